import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { loadConfig, type AigwConfig } from '../config/index.js';
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

/**
 * Written by `aigw serve` (mode 0600, beside the data) so that `aigw keys ...`, `aigw usage` and
 * `aigw serve --join` in another terminal reach the same DynamoDB Local: DynamoDB Local keeps one
 * database per access key id and region, so its endpoint alone would open an empty one.
 */
export interface RunningDynamoDb {
  endpoint: string;
  /** Part of DynamoDB Local's namespace, like the access key id. */
  region?: string;
  pid: number;
  credentials: StaticCredentials;
}

const runningFile = (config: AigwConfig) => path.join(config.dynamodb.data_dir, 'running.json');

/** `aigw serve --join` found no running `aigw serve` to join. */
export class NothingToJoinError extends Error {
  override readonly name = 'NothingToJoinError';
}

export interface LocalStoreOptions {
  /** This process serves: it starts DynamoDB Local (unless joining) and writes running.json for others. */
  advertise: boolean;
  /** Use the DynamoDB Local of the `aigw serve` running on the same data folder, or fail. */
  join?: boolean;
}

/**
 * The table the gateway uses: the configured DynamoDB endpoint (with the credentials of the
 * running `aigw serve` when it is that one's DynamoDB Local), else the DynamoDB Local that a
 * running `aigw serve` started, else a DynamoDB Local of our own on the same data folder.
 */
export async function openLocalStore(config: AigwConfig, options: LocalStoreOptions): Promise<LocalStore> {
  const schema = tableSchema(config.dynamodb.table);
  if (config.dynamodb.endpoint) {
    const same = await findRunning(config);
    const credentials = same && sameEndpoint(same.endpoint, config.dynamodb.endpoint) ? same.credentials : undefined;
    const region = (credentials && same?.region) || config.dynamodb.region;
    const client = createDynamoDbClient({ endpoint: config.dynamodb.endpoint, region, credentials, requestTimeoutMs: config.dynamodb.timeout_ms });
    await ensureTable(client, schema);
    return { store: { client, tableName: schema.tableName }, close: async () => client.destroy() };
  }

  const running = options.advertise && !options.join ? undefined : await findRunning(config);
  if (options.join && !running) {
    throw new NothingToJoinError(
      `--join: no running \`aigw serve\` found (${runningFile(config)} is missing or its process is gone); start one first, in this folder or with the same [dynamodb] data_dir`,
    );
  }
  if (running) {
    const client = createDynamoDbClient({ endpoint: running.endpoint, region: running.region ?? config.dynamodb.region, credentials: running.credentials, requestTimeoutMs: config.dynamodb.timeout_ms });
    return { store: { client, tableName: schema.tableName }, close: async () => client.destroy() };
  }

  const local = await startDynamoDbLocal({ dataDir: config.dynamodb.data_dir });
  const client = createDynamoDbClient({ endpoint: local.endpoint, region: config.dynamodb.region, credentials: local.credentials, requestTimeoutMs: config.dynamodb.timeout_ms });
  await ensureTable(client, schema);
  if (options.advertise) {
    const info: RunningDynamoDb = { endpoint: local.endpoint, region: config.dynamodb.region, pid: process.pid, credentials: local.credentials };
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

/** Whether two endpoint URLs name the same server (localhost and 127.0.0.1 alike). */
function sameEndpoint(a: string, b: string): boolean {
  const normal = (url: string) => {
    try {
      const parsed = new URL(url);
      return `${parsed.protocol}//${parsed.hostname === 'localhost' ? '127.0.0.1' : parsed.hostname}:${parsed.port}`;
    } catch {
      return url;
    }
  };
  return normal(a) === normal(b);
}

export async function findRunning(config: AigwConfig): Promise<RunningDynamoDb | undefined> {
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

/** Runs an operator command (`aigw keys`, `aigw usage`) against the gateway's table, then closes it. */
export async function withStore(command: Command, use: (store: Store, config: AigwConfig) => Promise<void>): Promise<void> {
  const config = loadConfig(command.optsWithGlobals().config);
  const local = await openLocalStore(config, { advertise: false });
  try {
    await use(local.store, config);
  } finally {
    await local.close();
  }
}
