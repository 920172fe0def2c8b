import { PutCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { createHash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ApiKeyCache,
  ApiKeyInputError,
  ApiKeyNotFoundError,
  authenticateApiKey,
  createApiKey,
  generateApiKey,
  hashApiKey,
  listApiKeys,
  revokeApiKey,
  type ApiKeyRecord,
} from '../../src/admission/index.js';
import { createDynamoDbClient, itemKeys, type Store } from '../../src/store/index.js';
import { createTestStore, providedDynamoDb } from '../setup/store.js';

const API_KEY_BODY_START = 'aigw-'.length;
let store: Store;

beforeAll(async () => {
  store = await createTestStore('api-keys');
});

/** A cache per simulated gateway instance; long TTLs unless a test is about expiry. */
function instanceCache(ttlMs = 60_000, negativeTtlMs = 60_000): ApiKeyCache {
  return new ApiKeyCache({ ttlMs, negativeTtlMs });
}

describe('createApiKey', () => {
  it('returns aigw- plus 40 base62 characters and a record with defaults', async () => {
    const before = Date.now();
    const { key, record } = await createApiKey(store, { name: '  ci bot  ' });
    expect(key).toMatch(/^aigw-[0-9A-Za-z]{40}$/);
    expect(record).toEqual({
      keyId: expect.stringMatching(/^key_[0-9A-Za-z]{12}$/),
      name: 'ci bot',
      status: 'active',
      createdAt: expect.any(String),
      plan: 'free',
      allowedModels: [],
      limits: {},
      allowedOrigins: [],
    });
    expect(Date.parse(record.createdAt)).toBeGreaterThanOrEqual(before - 1_000);
    expect(new Date(record.createdAt).toISOString()).toBe(record.createdAt);
  });

  it('keeps plan and allowed models', async () => {
    const { record } = await createApiKey(store, {
      name: 'team',
      plan: 'pro',
      allowedModels: ['aigw-tiny', 'qwen', 'qwen'],
    });
    expect(record.plan).toBe('pro');
    expect(record.allowedModels).toEqual(['aigw-tiny', 'qwen']);
  });

  it('stores only the SHA-256 of the key, under KEY#<sha256> / KEY', async () => {
    const { key, record } = await createApiKey(store, { name: 'hashed' });
    const sha = createHash('sha256').update(key).digest('hex');
    expect(hashApiKey(key)).toBe(sha);
    const scan = await store.client.send(new ScanCommand({ TableName: store.tableName }));
    const items = scan.Items ?? [];
    expect(JSON.stringify(items)).not.toContain(key.slice(API_KEY_BODY_START));
    const item = items.find((i) => i.keyId === record.keyId);
    expect(item).toMatchObject({ pk: `KEY#${sha}`, sk: 'KEY', status: 'active', plan: 'free' });
  });

  it('never hands out the same key or id twice', async () => {
    const created = await Promise.all(
      Array.from({ length: 20 }, (_, i) => createApiKey(store, { name: `bulk ${i}` })),
    );
    expect(new Set(created.map((c) => c.key)).size).toBe(20);
    expect(new Set(created.map((c) => c.record.keyId)).size).toBe(20);
  });

  it('rejects bad input with ApiKeyInputError naming the field', async () => {
    await expect(createApiKey(store, { name: '   ' })).rejects.toThrow(ApiKeyInputError);
    await expect(createApiKey(store, { name: 'x'.repeat(201) })).rejects.toThrow(/^name:/);
    await expect(createApiKey(store, { name: 'p', plan: 'gold plan' })).rejects.toThrow(/^plan:/);
    await expect(createApiKey(store, { name: 'm', allowedModels: [''] })).rejects.toThrow(/^allowedModels:/);
  });
});

describe('authenticateApiKey', () => {
  it('returns the active record for a valid key', async () => {
    const { key, record } = await createApiKey(store, { name: 'auth' });
    expect(await authenticateApiKey(store, key, { cache: instanceCache() })).toEqual(record);
  });

  it('returns null for an unknown well-formed key', async () => {
    expect(await authenticateApiKey(store, generateApiKey(), { cache: instanceCache() })).toBeNull();
  });

  it('returns null for malformed keys without asking DynamoDB', async () => {
    const { key } = await createApiKey(store, { name: 'malformed' });
    const { region, credentials } = providedDynamoDb();
    // Nothing listens on port 9 (discard): any DynamoDB call would throw, not return null.
    const deadStore: Store = {
      client: createDynamoDbClient({ endpoint: 'http://127.0.0.1:9', region, credentials }),
      tableName: store.tableName,
    };
    const malformed = [
      '',
      'aigw-',
      `Bearer ${key}`,
      `${key} `,
      `${key}x`,
      key.slice(0, -1),
      key.replace('aigw-', 'aigx-'),
      `aigw-${'-'.repeat(40)}`,
      `aigw-${'é'.repeat(40)}`,
    ];
    for (const presented of malformed) {
      expect(await authenticateApiKey(deadStore, presented, { cache: instanceCache() })).toBeNull();
      expect(await authenticateApiKey(store, presented, { cache: instanceCache() })).toBeNull();
    }
    await expect(authenticateApiKey(deadStore, generateApiKey(), { cache: instanceCache() })).rejects.toThrow();
  });

  it('caches unknown keys only for the shorter negative TTL', async () => {
    const presented = generateApiKey();
    const longCache = instanceCache(60_000, 60_000);
    const shortCache = instanceCache(60_000, 30);
    expect(await authenticateApiKey(store, presented, { cache: longCache })).toBeNull();
    expect(await authenticateApiKey(store, presented, { cache: shortCache })).toBeNull();
    // The key appears in the table afterwards (as if created on another instance).
    const record: ApiKeyRecord = {
      keyId: 'key_abcdefABCDEF',
      name: 'late',
      status: 'active',
      createdAt: new Date().toISOString(),
      plan: 'free',
      allowedModels: [],
      limits: {},
      allowedOrigins: [],
    };
    await store.client.send(
      new PutCommand({ TableName: store.tableName, Item: { ...itemKeys.apiKey(hashApiKey(presented)), ...record } }),
    );
    expect(await authenticateApiKey(store, presented, { cache: longCache })).toBeNull();
    await delay(40);
    expect(await authenticateApiKey(store, presented, { cache: shortCache })).toEqual(record);
  });
});

describe('listApiKeys', () => {
  it('lists every key oldest first, without hashes or key material', async () => {
    const own = await createTestStore('api-keys-list');
    const a = await createApiKey(own, { name: 'first' });
    await delay(2);
    const b = await createApiKey(own, { name: 'second', plan: 'pro' });
    await own.client.send(new PutCommand({ TableName: own.tableName, Item: { ...itemKeys.alias('m'), v: 1 } }));
    const listed = await listApiKeys(own);
    expect(listed).toEqual([a.record, b.record]);
    expect(JSON.stringify(listed)).not.toContain(hashApiKey(a.key));
    expect(await listApiKeys(await createTestStore('api-keys-empty'))).toEqual([]);
  });
});

describe('revokeApiKey', () => {
  it('revokes at once on the instance that revoked, idempotently', async () => {
    const cache = instanceCache();
    const { key, record } = await createApiKey(store, { name: 'to revoke' });
    expect(await authenticateApiKey(store, key, { cache })).toEqual(record);
    const revoked = await revokeApiKey(store, record.keyId, { cache });
    expect(revoked).toEqual({ ...record, status: 'revoked', revokedAt: expect.any(String) });
    expect(await authenticateApiKey(store, key, { cache })).toBeNull();
    const again = await revokeApiKey(store, record.keyId, { cache });
    expect(again.revokedAt).toBe(revoked.revokedAt);
    const listed = (await listApiKeys(store)).find((r) => r.keyId === record.keyId);
    expect(listed?.status).toBe('revoked');
  });

  it('bites on other instances once their cached record expires', async () => {
    const { key, record } = await createApiKey(store, { name: 'elsewhere' });
    const staleInstance = instanceCache(60_000);
    const shortInstance = instanceCache(50);
    expect(await authenticateApiKey(store, key, { cache: staleInstance })).toEqual(record);
    expect(await authenticateApiKey(store, key, { cache: shortInstance })).toEqual(record);

    await revokeApiKey(store, record.keyId, { cache: instanceCache() });

    // Within its TTL another instance still trusts its cached record: that TTL is the bound.
    expect(await authenticateApiKey(store, key, { cache: staleInstance })).toEqual(record);
    await delay(60);
    expect(await authenticateApiKey(store, key, { cache: shortInstance })).toBeNull();
    // A fresh instance (empty cache) sees the revocation immediately.
    expect(await authenticateApiKey(store, key, { cache: instanceCache() })).toBeNull();
  });

  it('throws ApiKeyNotFoundError for unknown and malformed ids', async () => {
    await expect(revokeApiKey(store, 'key_000000000000')).rejects.toBeInstanceOf(ApiKeyNotFoundError);
    await expect(revokeApiKey(store, 'not-an-id')).rejects.toThrow('no API key with id not-an-id');
  });
});

describe('ApiKeyCache', () => {
  it('defaults to 5 s for records and 1 s for unknown keys', () => {
    const cache = new ApiKeyCache();
    expect(cache.ttlMs).toBe(5_000);
    expect(cache.negativeTtlMs).toBe(1_000);
  });

  it('evicts the oldest entry beyond maxEntries and keeps tables apart', () => {
    const cache = new ApiKeyCache({ maxEntries: 2 });
    cache.set('t', 'a', null);
    cache.set('t', 'b', null);
    cache.set('t', 'c', null);
    expect(cache.get('t', 'a')).toBeUndefined();
    expect(cache.get('t', 'b')).toBeNull();
    expect(cache.get('t', 'c')).toBeNull();
    expect(cache.get('other', 'c')).toBeUndefined();
  });
});
