// Test helper: a Store on the run's DynamoDB Local (started by ./dynamodb.ts) in a table of its
// own, so test files running in parallel never see each other's items.
import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import {
  createDynamoDbClient,
  ensureTable,
  tableSchema,
  type Store,
} from '../../src/store/index.js';
import type { ProvidedDynamoDb } from './dynamodb.js';

export function providedDynamoDb(): ProvidedDynamoDb {
  const provided = inject('dynamoDb');
  if (!provided) {
    throw new Error(
      'DynamoDB Local is not running: add test/setup/dynamodb.ts to globalSetup in vitest.config.ts ' +
        '(or run `npx vitest run --globalSetup test/setup/dynamodb.ts …`)',
    );
  }
  return provided;
}

/** A fresh, ACTIVE table named `<prefix>-<random>` and a client for it. */
export async function createTestStore(prefix: string): Promise<Store> {
  const { endpoint, region, credentials } = providedDynamoDb();
  // A generous deadline: a cold DynamoDB Local on a loaded machine takes seconds for a burst, and
  // these tables are not what the timeout tests measure (they set their own).
  const client = createDynamoDbClient({ endpoint, region, credentials, connectionTimeoutMs: 30_000, requestTimeoutMs: 30_000 });
  const tableName = `${prefix}-${randomUUID().slice(0, 8)}`;
  await ensureTable(client, tableSchema(tableName));
  return { client, tableName };
}
