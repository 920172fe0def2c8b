// An admission write that timed out may still land: DynamoDB can apply it after the gateway gave
// up (a stalled server reads the request later). The client already got a 503, so whatever the
// write counted is taken back, once, in the background, and the write is fenced so that if it
// lands even later it is refused.
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { setTimeout as delay } from 'node:timers/promises';
import type { ItemKey, Store } from '../store/index.js';
import { updateInput } from './limits-item.js';

/**
 * The attribute admissions are fenced by: an admission write issued at time T applies only while
 * the item's fence is below T. Set to the time of a take-back, it refuses every admission write
 * issued before it that has not landed yet (the one written off, or another instance's, which
 * then sees the item changed and tries again at once).
 */
export const FENCE_ATTRIBUTE = 'fence';

/** The condition an admission write adds, with the names and values it needs. */
export function fenceCondition(issuedMs: number) {
  return {
    expression: '(attribute_not_exists(#fence) OR #fence < :issued)',
    names: { '#fence': FENCE_ATTRIBUTE },
    values: { ':issued': issuedMs },
  };
}

/** True when the failed call may have reached DynamoDB (not a refused connection). */
export function mayHaveLanded(error: unknown): boolean {
  return (error as { code?: string } | undefined)?.code !== 'ECONNREFUSED';
}

const RETRY_DELAYS_MS = [250, 500, 1_000, 2_000, 4_000];
/** Longest the take-back keeps trying while DynamoDB stays unreachable; the lease bounds the rest. */
const TAKE_BACK_BUDGET_MS = 60_000;

/**
 * Undoes an admission write that timed out: if its hold is there, removes it and subtracts what it
 * added; if not, raises the fence so the write can never apply. Each step is conditional, so the
 * two can't both happen or both miss. Retries while DynamoDB is unreachable, for a bounded time.
 */
export async function takeBackAdmission(store: Store, key: ItemKey, holdId: string, adds: Record<string, number>, now: () => number): Promise<void> {
  const hold = `h_${holdId}`;
  const negated = Object.fromEntries(Object.entries(adds).map(([attribute, value]) => [attribute, -value]));
  const started = now();
  for (let attempt = 0; now() - started < TAKE_BACK_BUDGET_MS; attempt++) {
    try {
      try {
        // The write landed: give back everything it counted.
        await store.client.send(new UpdateCommand(updateInput(store, key, negated, [hold], 'attribute_exists(#r0)')));
        return;
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
      }
      const fencedAt = now();
      const input = updateInput(store, key, {}, [], undefined, { [FENCE_ATTRIBUTE]: fencedAt });
      try {
        await store.client.send(
          new UpdateCommand({
            ...input,
            ConditionExpression: 'attribute_not_exists(#hold) AND (attribute_not_exists(#s0) OR #s0 < :s0)',
            ExpressionAttributeNames: { ...input.ExpressionAttributeNames, '#hold': hold },
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        );
        return;
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        // The hold appeared between the two steps: release it. Otherwise a later fence is up already.
        if ((error.Item ? unmarshall(error.Item) : {})[hold] !== undefined) continue;
        return;
      }
    } catch {
      await delay(RETRY_DELAYS_MS[Math.min(attempt, RETRY_DELAYS_MS.length - 1)]!);
    }
  }
}
