import { Command } from 'commander';
import { createApiKey, listApiKeys, revokeApiKey } from '../admission/index.js';
import { loadConfig } from '../config/index.js';
import type { Store } from '../store/index.js';
import { openLocalStore } from './local-store.js';

/** `aigw keys create|list|revoke`: API keys in the gateway's table (the running one's, locally). */
export function keysCommand(): Command {
  const keys = new Command('keys').description('API keys: only their SHA-256 is stored');

  keys
    .command('create')
    .description('create a key and print it once')
    .requiredOption('--name <name>', 'a name to recognise the key by')
    .option('--plan <plan>', 'plan whose limits apply', 'free')
    .option('--models <ids>', 'comma-separated model ids the key may use (default: all)')
    .action(async (options: { name: string; plan: string; models?: string }, command: Command) => {
      await withStore(command, async (store) => {
        const allowedModels = options.models?.split(',').map((m) => m.trim()).filter(Boolean) ?? [];
        const { key, record } = await createApiKey(store, { name: options.name, plan: options.plan, allowedModels });
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

async function withStore(command: Command, use: (store: Store) => Promise<void>): Promise<void> {
  const config = loadConfig(command.optsWithGlobals().config);
  const local = await openLocalStore(config, { advertise: false });
  try {
    await use(local.store);
  } finally {
    await local.close();
  }
}
