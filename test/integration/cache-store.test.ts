import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  COMPRESS_ABOVE_BYTES,
  CorruptCacheEntryError,
  DEFAULT_MAX_ENTRY_BYTES,
  ResponseCache,
  recorder,
  replay,
  type CachedGeneration,
} from '../../src/cache/index.js';
import type { GenerationEvent } from '../../src/engine/index.js';
import { createDynamoDbClient, itemKeys, type Store } from '../../src/store/index.js';
import { createTestStore, providedDynamoDb } from '../setup/store.js';

let store: Store;
let cache: ResponseCache;

beforeAll(async () => {
  store = await createTestStore('cache-store');
  cache = new ResponseCache(store, {});
});

const hash = () => randomBytes(32).toString('hex');
const usage = { promptTokens: 12, completionTokens: 3 };

function entry(deltas: string[]): CachedGeneration {
  return { deltas, finishReason: 'stop', usage: { ...usage }, createdAt: Math.floor(Date.now() / 1000) };
}

async function rawItem(h: string): Promise<Record<string, unknown> | undefined> {
  const out = await store.client.send(new GetCommand({ TableName: store.tableName, Key: itemKeys.cache(h), ConsistentRead: true }));
  return out.Item;
}

async function drain(iterable: AsyncIterable<GenerationEvent>): Promise<GenerationEvent[]> {
  const seen: GenerationEvent[] = [];
  for await (const event of iterable) seen.push(event);
  return seen;
}

describe('ResponseCache against DynamoDB Local', () => {
  it('stores a small entry as JSON and reads it back, with ttl in epoch seconds', async () => {
    const h = hash();
    const stored = entry(['Hello', ', ', 'world']);
    const before = Math.floor(Date.now() / 1000);
    expect(await cache.put(h, stored, 600)).toBe('stored');
    expect(await cache.get(h)).toEqual(stored);

    const item = await rawItem(h);
    expect(item).toMatchObject({ pk: `CACHE#${h}`, sk: 'CACHE', format: 'json', body: expect.any(String) });
    expect(item!.ttl).toBeGreaterThanOrEqual(before + 600);
    expect(item!.ttl).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 600);
  });

  it('misses a hash it never stored', async () => {
    expect(await cache.get(hash())).toBeUndefined();
  });

  it('replaces an entry stored under the same hash', async () => {
    const h = hash();
    await cache.put(h, entry(['first']), 600);
    await cache.put(h, entry(['second']), 600);
    expect((await cache.get(h))?.deltas).toEqual(['second']);
  });

  it('compresses a big entry into a smaller Binary attribute and reads it back', async () => {
    const h = hash();
    const deltas = Array.from({ length: 2_000 }, (_, i) => ` token${i % 50} ünïcode`);
    const big = entry(deltas);
    const json = JSON.stringify(big);
    expect(Buffer.byteLength(json)).toBeGreaterThan(COMPRESS_ABOVE_BYTES);

    expect(await cache.put(h, big, 600)).toBe('stored');
    const item = await rawItem(h);
    expect(item!.format).toBe('json+gzip');
    expect(item!.body).toBeInstanceOf(Uint8Array);
    expect((item!.body as Uint8Array).byteLength).toBeLessThan(Buffer.byteLength(json) / 2);
    expect(await cache.get(h)).toEqual(big);
  });

  it('stores an entry far over the item limit when it compresses under it', async () => {
    const h = hash();
    const huge = entry(Array.from({ length: 100_000 }, () => 'repeat '));
    expect(Buffer.byteLength(JSON.stringify(huge))).toBeGreaterThan(400_000);
    expect(await cache.put(h, huge, 600)).toBe('stored');
    expect((await cache.get(h))?.deltas).toHaveLength(100_000);
  });

  it('skips an entry whose compressed item would exceed maxEntryBytes, storing nothing', async () => {
    const h = hash();
    // Random base64 compresses to about 3/4 of its size: ~600 KB stays well over 350,000 bytes.
    const incompressible = entry(Array.from({ length: 600 }, () => randomBytes(750).toString('base64')));
    expect(await cache.put(h, incompressible, 600)).toBe('too_large');
    expect(await rawItem(h)).toBeUndefined();
    expect(await cache.get(h)).toBeUndefined();
    expect(DEFAULT_MAX_ENTRY_BYTES).toBe(350_000);
  });

  it('honours a configured maxEntryBytes', async () => {
    const small = new ResponseCache(store, { maxEntryBytes: 300 });
    const h = hash();
    expect(await small.put(h, entry(['x'.repeat(400)]), 600)).toBe('too_large');
    expect(await small.put(h, entry(['short']), 600)).toBe('stored');
  });

  it('treats an item whose ttl has passed as a miss, though DynamoDB has not deleted it yet', async () => {
    const h = hash();
    await cache.put(h, entry(['stale']), 600);
    await store.client.send(
      new UpdateCommand({
        TableName: store.tableName,
        Key: itemKeys.cache(h),
        UpdateExpression: 'SET #ttl = :past',
        ExpressionAttributeNames: { '#ttl': 'ttl' },
        ExpressionAttributeValues: { ':past': Math.floor(Date.now() / 1000) - 5 },
      }),
    );
    expect(await rawItem(h)).toBeDefined();
    expect(await cache.get(h)).toBeUndefined();
  });

  it('reads an item written directly with a future ttl and a gzip body, and misses one with a past ttl', async () => {
    const body = gzipSync(JSON.stringify(entry(['direct'])));
    const now = Math.floor(Date.now() / 1000);
    const [fresh, expired] = [hash(), hash()];
    for (const [h, ttl] of [[fresh, now + 60], [expired, now - 1]] as const) {
      await store.client.send(
        new PutCommand({ TableName: store.tableName, Item: { ...itemKeys.cache(h), ttl, format: 'json+gzip', body } }),
      );
    }
    expect((await cache.get(fresh))?.deltas).toEqual(['direct']);
    expect(await cache.get(expired)).toBeUndefined();
  });

  it('reports an unreadable item to onError and misses', async () => {
    const errors: unknown[] = [];
    const reporting = new ResponseCache(store, {}, { onError: (op, error) => errors.push([op, error]) });
    const h = hash();
    const ttl = Math.floor(Date.now() / 1000) + 60;
    await store.client.send(
      new PutCommand({ TableName: store.tableName, Item: { ...itemKeys.cache(h), ttl, format: 'json', body: '{"deltas":"nope"}' } }),
    );
    expect(await reporting.get(h)).toBeUndefined();
    expect(errors).toEqual([['get', expect.any(CorruptCacheEntryError)]]);
  });

  it('rejects a TTL that is not a positive whole number', async () => {
    for (const ttl of [0, -5, 1.5, NaN]) {
      await expect(cache.put(hash(), entry(['x']), ttl)).rejects.toThrow(RangeError);
    }
  });
});

describe('recorder and replay through the store', () => {
  async function* generation(failAfter?: number): AsyncGenerator<GenerationEvent> {
    const tokens = ['The', ' answer', ' is', ''];
    for (let i = 0; i < tokens.length; i++) {
      if (i === failAfter) throw new Error('model function went away');
      yield { type: 'token', tokenId: 100 + i, text: tokens[i] };
    }
    yield { type: 'finish', finishReason: 'length', text: ' 42', usage };
  }

  it('caches a complete generation and replays the same deltas, finish reason and usage', async () => {
    const h = hash();
    const recording = recorder(generation());
    const live = await drain(recording.events);
    const recorded = await recording.completed;
    expect(recorded).toBeDefined();
    expect(await cache.put(h, recorded!, 600)).toBe('stored');

    const hit = await cache.get(h);
    const replayed = await drain(replay(hit!));
    const tokensOnly = (events: GenerationEvent[]) => events.flatMap((e) => (e.text ? [e.text] : []));
    expect(tokensOnly(replayed)).toEqual(tokensOnly(live));
    expect(replayed.at(-1)).toEqual({ type: 'finish', finishReason: 'length', text: '', usage });
  });

  it('never yields an entry to cache for a generation that failed or was abandoned', async () => {
    const failed = recorder(generation(2));
    await expect(drain(failed.events)).rejects.toThrow('model function went away');
    expect(await failed.completed).toBeUndefined();

    const abandoned = recorder(generation());
    for await (const event of abandoned.events) if (event.text === ' answer') break;
    expect(await abandoned.completed).toBeUndefined();
  });
});

describe('a store that cannot be reached', () => {
  it('makes get miss and put report failed, telling onError each time', async () => {
    const { region, credentials } = providedDynamoDb();
    const client = createDynamoDbClient({ endpoint: 'http://127.0.0.1:1', region, credentials, maxAttempts: 1 });
    const errors: Array<[string, unknown]> = [];
    const dead = new ResponseCache({ client, tableName: store.tableName }, {}, { onError: (op, error) => errors.push([op, error]) });

    expect(await dead.get(hash())).toBeUndefined();
    expect(await dead.put(hash(), entry(['lost']), 600)).toBe('failed');
    expect(errors.map(([op]) => op)).toEqual(['get', 'put']);
    expect(errors.every(([, error]) => error instanceof Error)).toBe(true);
  });
});
