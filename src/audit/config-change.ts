// Guardrail configuration lives in aigw.toml, not in the table, so its changes are noticed when
// a gateway starts: the fingerprint of the rules is compared with the last one recorded, and a
// change is audited once however many instances start with it (one conditional write decides).
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Store } from '../store/index.js';
import { appendAudit } from './audit-log.js';

const STATE_KEY = { pk: 'AUDITSTATE#guardrails', sk: 'STATE' };

/** Returns true when the configuration differed from the last recorded one (and was audited). */
export async function auditGuardrailConfig(store: Store, fingerprint: string, rules: readonly string[], options: { retentionDays: number; actor: string }): Promise<boolean> {
  let previous: string | undefined;
  try {
    const out = await store.client.send(
      new UpdateCommand({
        TableName: store.tableName,
        Key: STATE_KEY,
        UpdateExpression: 'SET fingerprint = :fingerprint',
        ConditionExpression: 'attribute_not_exists(fingerprint) OR fingerprint <> :fingerprint',
        ExpressionAttributeValues: { ':fingerprint': fingerprint },
        ReturnValues: 'UPDATED_OLD',
      }),
    );
    previous = out.Attributes?.fingerprint as string | undefined;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
  await appendAudit(store, { kind: 'guardrails_changed', actor: options.actor, data: { before: previous ?? null, after: fingerprint, rules } }, { retentionDays: options.retentionDays });
  return true;
}
