import { Command, InvalidArgumentError } from 'commander';
import { createApiKey, limitsOfPlan, listApiKeys, revokeApiKey, type Limits } from '../admission/index.js';
import { loadConfig, parsePlanLimits } from '../config/index.js';
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
    .action(async (options: { name: string; plan: string; models?: string; origins?: string; limit: string[] }, command: Command) => {
      await withStore(command, async (store) => {
        const list = (value?: string) => value?.split(',').map((m) => m.trim()).filter(Boolean) ?? [];
        const { key, record } = await createApiKey(store, {
          name: options.name,
          plan: options.plan,
          allowedModels: list(options.models),
          allowedOrigins: list(options.origins),
          limits: parseLimitOverrides(options.limit),
        });
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
      await withStore(command, async (store) => {
        const record = await revokeApiKey(store, keyId);
        console.log(`revoked ${record.keyId} (${record.name})`);
      });
    });

  return keys;
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
