import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { AigwConfig } from '../config/index.js';
import {
  createDynamoDbClient,
  ensureTable,
  startDynamoDbLocal,
  tableSchema,
  type StaticCredentials,
  type Store,
} from '../store/index.js';

export interface LocalStore {
  store: Store;
  /** Stops DynamoDB Local when this process started it; a no-op otherwise. */
  close(): Promise<void>;
}

/** Written by `aigw serve` so `aigw keys ...` in another terminal can reach the same DynamoDB Local. */
interface RunningDynamoDb {
  endpoint: string;
  pid: number;
  credentials: StaticCredentials;
}

const runningFile = (config: AigwConfig) => path.join(config.dynamodb.data_dir, 'running.json');

/**
 * The table the gateway uses: the configured DynamoDB endpoint, else the DynamoDB Local that a
 * running `aigw serve` started, else a DynamoDB Local of our own on the same data folder.
 */
export async function openLocalStore(config: AigwConfig, options: { advertise: boolean }): Promise<LocalStore> {
  const schema = tableSchema(config.dynamodb.table);
  if (config.dynamodb.endpoint) {
    const client = createDynamoDbClient({ endpoint: config.dynamodb.endpoint, region: config.dynamodb.region, requestTimeoutMs: config.dynamodb.timeout_ms });
    await ensureTable(client, schema);
    return { store: { client, tableName: schema.tableName }, close: async () => client.destroy() };
  }

  const running = options.advertise ? undefined : await findRunning(config);
  if (running) {
    const client = createDynamoDbClient({ endpoint: running.endpoint, region: config.dynamodb.region, credentials: running.credentials, requestTimeoutMs: config.dynamodb.timeout_ms });
    return { store: { client, tableName: schema.tableName }, close: async () => client.destroy() };
  }

  const local = await startDynamoDbLocal({ dataDir: config.dynamodb.data_dir });
  const client = createDynamoDbClient({ endpoint: local.endpoint, region: config.dynamodb.region, credentials: local.credentials, requestTimeoutMs: config.dynamodb.timeout_ms });
  await ensureTable(client, schema);
  if (options.advertise) {
    const info: RunningDynamoDb = { endpoint: local.endpoint, pid: process.pid, credentials: local.credentials };
    await writeFile(runningFile(config), `${JSON.stringify(info)}\n`, { mode: 0o600 });
  }
  return {
    store: { client, tableName: schema.tableName },
    async close() {
      client.destroy();
      if (options.advertise) await rm(runningFile(config), { force: true });
      await local.stop();
    },
  };
}

async function findRunning(config: AigwConfig): Promise<RunningDynamoDb | undefined> {
  let info: RunningDynamoDb;
  try {
    info = JSON.parse(await readFile(runningFile(config), 'utf8')) as RunningDynamoDb;
  } catch {
    return undefined;
  }
  try {
    process.kill(info.pid, 0); // signal 0 only asks whether the serving process is alive
    return info;
  } catch {
    return undefined;
  }
}
