import { Command, InvalidArgumentError } from 'commander';
import { userInfo } from 'node:os';
import { createApiKey, limitsOfPlan, listApiKeys, revokeApiKey, updateApiKey, type ApiKeyRecord, type Limits } from '../admission/index.js';
import { appendAudit, type AuditEvent } from '../audit/index.js';
import type { AigwConfig } from '../config/index.js';
import type { Store } from '../store/index.js';
import { parsePlanLimits } from '../config/index.js';
import { withStore } from './local-store.js';

/** `aigw keys create|list|revoke`: API keys in the gateway's table (the running one's, locally). */
export function keysCommand(): Command {
  const keys = new Command('keys').description('API keys: only their SHA-256 is stored');

  keys
    .command('create')
    .description('create a key and print it once')
    .requiredOption('--name <name>', 'a name to recognise the key by')
    .option('--plan <plan>', 'plan whose limits apply', 'free')
    .option('--models <ids>', 'comma-separated model ids the key may use (default: all)')
    .option('--origins <origins>', 'comma-separated browser origins the key may be used from (default: any the gateway allows)')
    .option('--limit <name=value>', 'override a plan limit, e.g. requests_per_minute=10 or budget_usd_per_day=5 (repeatable)', collect, [])
    .option('--guardrails <rules>', "comma-separated guardrail rules for this key (default: its plan's)")
    .option('--log-prompts', "log this key's prompts and completions (logs and audit records)")
    .action(async (options: { name: string; plan: string; models?: string; origins?: string; limit: string[]; guardrails?: string; logPrompts?: boolean }, command: Command) => {
      await withStore(command, async (store, config) => {
        const { key, record } = await createApiKey(store, {
          name: options.name,
          plan: options.plan,
          allowedModels: list(options.models),
          allowedOrigins: list(options.origins),
          limits: parseLimitOverrides(options.limit),
          ...(options.guardrails !== undefined ? { guardrails: list(options.guardrails) } : {}),
          ...(options.logPrompts ? { logPrompts: true } : {}),
        });
        await audit(store, config, { kind: 'key_created', keyId: record.keyId, data: describeKey(record) });
        console.log(key);
        console.error(`created ${record.keyId} (${record.name}, plan ${record.plan}); the key above is shown only this once`);
      });
    });

  keys
    .command('list')
    .description('list keys (ids and names, never the keys themselves)')
    .action(async (_options, command: Command) => {
      await withStore(command, async (store) => {
        for (const key of await listApiKeys(store)) {
          const models = key.allowedModels.length ? key.allowedModels.join(',') : 'all models';
          console.log(`${key.keyId}\t${key.status}\t${key.plan}\t${key.createdAt}\t${key.name}\t${models}`);
        }
      });
    });

  keys
    .command('revoke')
    .description('revoke a key by its id (key_...)')
    .argument('<keyId>')
    .action(async (keyId: string, _options, command: Command) => {
      await withStore(command, async (store, config) => {
        const record = await revokeApiKey(store, keyId);
        await audit(store, config, { kind: 'key_revoked', keyId: record.keyId, data: { name: record.name } });
        console.log(`revoked ${record.keyId} (${record.name})`);
      });
    });

  keys
    .command('update')
    .description("change a key's limits, origins, guardrail rules or prompt logging")
    .argument('<keyId>')
    .option('--limit <name=value>', 'replace the key\'s limit overrides, e.g. requests_per_minute=10 (repeatable)', collect, [])
    .option('--clear-limits', 'remove every limit override (the plan\'s limits apply)')
    .option('--origins <origins>', 'comma-separated browser origins ("" for any the gateway allows)')
    .option('--guardrails <rules>', 'comma-separated guardrail rules ("plan" for the plan\'s)')
    .option('--log-prompts', 'log this key\'s prompts and completions')
    .option('--no-log-prompts', 'stop logging them')
    .action(async (keyId: string, options: { limit: string[]; clearLimits?: boolean; origins?: string; guardrails?: string; logPrompts?: boolean }, command: Command) => {
      await withStore(command, async (store, config) => {
        const logPromptsGiven = command.getOptionValueSource('logPrompts') === 'cli';
        const { before, after } = await updateApiKey(store, keyId, {
          ...(options.limit.length || options.clearLimits ? { limits: parseLimitOverrides(options.limit) } : {}),
          ...(options.origins !== undefined ? { allowedOrigins: list(options.origins) } : {}),
          ...(options.guardrails !== undefined ? { guardrails: options.guardrails === 'plan' ? null : list(options.guardrails) } : {}),
          ...(logPromptsGiven ? { logPrompts: options.logPrompts === true } : {}),
        });
        const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
        if (!same(before.limits, after.limits)) await audit(store, config, { kind: 'key_limits_changed', keyId, data: { before: before.limits, after: after.limits } });
        if (!same(before.allowedOrigins, after.allowedOrigins)) {
          await audit(store, config, { kind: 'key_origins_changed', keyId, data: { before: before.allowedOrigins, after: after.allowedOrigins } });
        }
        if (!same(before.guardrails ?? null, after.guardrails ?? null) || (before.logPrompts ?? false) !== (after.logPrompts ?? false)) {
          const settings = (r: ApiKeyRecord) => ({ guardrails: r.guardrails ?? null, logPrompts: r.logPrompts ?? false });
          await audit(store, config, { kind: 'key_settings_changed', keyId, data: { before: settings(before), after: settings(after) } });
        }
        console.log(`updated ${after.keyId} (${after.name})`);
      });
    });

  return keys;
}

function list(value?: string): string[] {
  return value?.split(',').map((m) => m.trim()).filter(Boolean) ?? [];
}

function describeKey(record: ApiKeyRecord): Record<string, unknown> {
  return {
    name: record.name,
    plan: record.plan,
    allowedModels: record.allowedModels,
    allowedOrigins: record.allowedOrigins,
    limits: record.limits,
    guardrails: record.guardrails ?? null,
    logPrompts: record.logPrompts ?? false,
  };
}

/** Who ran the command, for the audit record. */
export function operatorName(): string {
  try {
    return process.env.AIGW_ACTOR ?? userInfo().username;
  } catch {
    return 'cli';
  }
}

async function audit(store: Store, config: AigwConfig, event: AuditEvent): Promise<void> {
  if (!config.audit.enabled) return;
  await appendAudit(store, { actor: operatorName(), ...event }, { retentionDays: config.audit.retention_days });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** `--limit requests_per_minute=10` uses aigw.toml's plan key names and units (dollars for budgets). */
function parseLimitOverrides(pairs: string[]): Limits {
  const table: Record<string, string> = {};
  for (const pair of pairs) {
    const [name, value] = pair.split('=', 2);
    if (!name || value === undefined) throw new InvalidArgumentError(`--limit ${pair}: expected name=value`);
    table[name.trim()] = value.trim();
  }
  const plan = parsePlanLimits(table);
  return limitsOfPlan(plan);
}
