import {
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_TABLE_NAME,
  KEY_PREFIX,
  StoreUnavailableError,
  createDynamoDbClient,
  createTableInput,
  ensureTable,
  itemKeys,
  tableSchema,
} from '../../src/store/index.js';
import { createTestStore, providedDynamoDb } from '../setup/store.js';

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

describe('table schema', () => {
  it('defaults to the table name aigw with pk/sk string keys, ttl and on-demand billing', () => {
    const schema = tableSchema();
    expect(schema.tableName).toBe(DEFAULT_TABLE_NAME);
    expect(DEFAULT_TABLE_NAME).toBe('aigw');
    expect(createTableInput(tableSchema('other'))).toEqual({
      TableName: 'other',
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
    });
    expect(schema.ttlAttribute).toBe('ttl');
  });

  it('builds item keys that start with their family prefix and never collide across families', () => {
    const keys = [
      itemKeys.apiKey('ab'),
      itemKeys.keyLimits('key_1'),
      itemKeys.modelLimits('key_1'),
      itemKeys.cache('ab'),
      itemKeys.alias('m'),
      itemKeys.usage('key_1', '2026-11-27'),
    ];
    const prefixes = Object.values(KEY_PREFIX);
    keys.forEach((key, i) => expect(key.pk.startsWith(prefixes[i]!)).toBe(true));
    expect(new Set(keys.map((k) => `${k.pk}|${k.sk}`)).size).toBe(keys.length);
    expect(itemKeys.apiKey('ab')).toEqual({ pk: 'KEY#ab', sk: 'KEY' });
    // A model id that looks like a key id still lands in its own family.
    expect(itemKeys.keyLimits('key_1').pk).not.toBe(itemKeys.modelLimits('key_1').pk);
  });
});

describe('ensureTable on DynamoDB Local', () => {
  it('creates an ACTIVE table with the schema keys and TTL on the ttl attribute', async () => {
    const store = await createTestStore('store-create');
    const table = await store.client.send(new DescribeTableCommand({ TableName: store.tableName }));
    expect(table.Table?.TableStatus).toBe('ACTIVE');
    expect(table.Table?.KeySchema).toEqual([
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ]);
    const ttl = await store.client.send(new DescribeTimeToLiveCommand({ TableName: store.tableName }));
    expect(ttl.TimeToLiveDescription).toMatchObject({ AttributeName: 'ttl', TimeToLiveStatus: 'ENABLED' });
  });

  it('is idempotent, also when two callers race, and keeps existing items', async () => {
    const store = await createTestStore('store-idem');
    const key = itemKeys.alias('demo');
    await store.client.send(new PutCommand({ TableName: store.tableName, Item: { ...key, v: 1 } }));
    await Promise.all([
      ensureTable(store.client, tableSchema(store.tableName)),
      ensureTable(store.client, tableSchema(store.tableName)),
    ]);
    const got = await store.client.send(new GetCommand({ TableName: store.tableName, Key: key }));
    expect(got.Item).toEqual({ ...key, v: 1 });

    const fresh = `${store.tableName}-race`;
    await Promise.all([
      ensureTable(store.client, tableSchema(fresh)),
      ensureTable(store.client, tableSchema(fresh)),
    ]);
    const table = await store.client.send(new DescribeTableCommand({ TableName: fresh }));
    expect(table.Table?.TableStatus).toBe('ACTIVE');
  });

  it('fails with StoreUnavailableError naming the endpoint when nothing listens there', async () => {
    const port = await closedPort();
    const { region, credentials } = providedDynamoDb();
    const client = createDynamoDbClient({ endpoint: `http://127.0.0.1:${port}`, region, credentials });
    const failure = ensureTable(client, tableSchema('store-dead'));
    await expect(failure).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(failure).rejects.toThrow(`127.0.0.1:${port}`);
  });
});
