// Cache entries in the store's table, item CACHE#<hash>: the entry as JSON, gzip-compressed
// when over 1 KB. A failing store never fails the request: get misses, put reports 'failed'.
//
// Size: DynamoDB refuses items over 400 KB. An entry whose stored item (compressed body, key,
// ttl and attribute names) would be over maxEntryBytes (350,000 by default, leaving margin) is
// not stored: put returns 'too_large' and the request is answered uncached.
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import { BatchWriteCommand, GetCommand } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { GroupCommit, itemKeys, type Store } from '../store/index.js';
import { DEFAULT_MAX_ENTRY_BYTES, type CacheConfig } from './cache-config.js';
import type { CachedGeneration } from './cached-generation.js';
import { CorruptCacheEntryError } from './errors.js';

/** BatchWriteItem's limit; 25 entries of at most maxEntryBytes stay far under its 16 MB. */
const MAX_BATCH = 25;
/** Items DynamoDB left unprocessed (throttling) are sent again this many times, 50 ms apart and doubling. */
const UNPROCESSED_RETRIES = 3;

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** JSON bodies above this many bytes are stored gzip-compressed. */
export const COMPRESS_ABOVE_BYTES = 1024;

export type CachePutResult = 'stored' | 'too_large' | 'failed';

export interface ResponseCacheOptions {
  /** Hears every store or decoding error that get and put absorb, for the caller to log. */
  onError?: (operation: 'get' | 'put', error: unknown) => void;
}

type BodyFormat = 'json' | 'json+gzip';

interface CacheItem {
  pk: string;
  sk: string;
  /** Epoch seconds; DynamoDB deletes the item some time after, reads check it themselves. */
  ttl: number;
  format: BodyFormat;
  body: string | Uint8Array;
}

const entrySchema = z.object({
  deltas: z.array(z.string()),
  finishReason: z.enum(['stop', 'length']),
  usage: z.object({ promptTokens: z.number().int().nonnegative(), completionTokens: z.number().int().nonnegative() }),
  createdAt: z.number(),
});

export class ResponseCache {
  private readonly maxEntryBytes: number;
  /**
   * Entries this instance is writing right now, by hash: the write runs after the response, so a
   * client repeating its request at once is answered from here instead of missing.
   */
  private readonly writing = new Map<string, CachedGeneration>();
  /** Entries stored while a write is under way go together in the next BatchWriteItem. */
  private readonly writes: GroupCommit<CacheItem, boolean>;

  constructor(
    private readonly store: Store,
    config: Pick<CacheConfig, 'maxEntryBytes'>,
    private readonly options: ResponseCacheOptions = {},
  ) {
    this.maxEntryBytes = config.maxEntryBytes ?? DEFAULT_MAX_ENTRY_BYTES;
    this.writes = new GroupCommit({ batchSize: (queued) => Math.min(queued.length, MAX_BATCH), write: (items) => this.writeBatch(items) });
  }

  /** The live entry under this hash; undefined when absent, expired, unreadable or the store fails. */
  async get(hash: string): Promise<CachedGeneration | undefined> {
    const pending = this.writing.get(hash);
    if (pending) return pending;
    try {
      const out = await this.store.client.send(new GetCommand({ TableName: this.store.tableName, Key: itemKeys.cache(hash) }));
      const item = out.Item as Partial<CacheItem> | undefined;
      if (!item) return undefined;
      // TTL deletion lags by up to days: an expired item may still be there.
      if (typeof item.ttl !== 'number' || item.ttl <= nowSeconds()) return undefined;
      return await decodeEntry(item);
    } catch (error) {
      this.options.onError?.('get', error);
      return undefined;
    }
  }

  /** Stores (or replaces) the entry for ttlSeconds, a positive whole number. */
  async put(hash: string, entry: CachedGeneration, ttlSeconds: number): Promise<CachePutResult> {
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0) {
      throw new RangeError(`ttlSeconds must be a positive whole number, got ${ttlSeconds}`);
    }
    this.writing.set(hash, entry);
    try {
      const item: CacheItem = { ...itemKeys.cache(hash), ttl: nowSeconds() + ttlSeconds, ...(await encodeEntry(entry)) };
      if (itemBytes(item) > this.maxEntryBytes) return 'too_large';
      if (!(await this.writes.add(item))) throw new Error('DynamoDB left the cache write unprocessed');
      return 'stored';
    } catch (error) {
      this.options.onError?.('put', error);
      return 'failed';
    } finally {
      if (this.writing.get(hash) === entry) this.writing.delete(hash);
    }
  }

  /** Puts a batch of items (one per key: the latest wins); true for each item that was written. */
  private async writeBatch(items: CacheItem[]): Promise<boolean[]> {
    const latest = new Map(items.map((item) => [item.pk, item]));
    let pending = [...latest.values()].map((Item) => ({ PutRequest: { Item } }));
    for (let attempt = 0; pending.length > 0 && attempt <= UNPROCESSED_RETRIES; attempt++) {
      if (attempt > 0) await delay(50 * 2 ** (attempt - 1));
      const out = await this.store.client.send(new BatchWriteCommand({ RequestItems: { [this.store.tableName]: pending } }));
      pending = (out.UnprocessedItems?.[this.store.tableName] ?? []) as typeof pending;
    }
    const unwritten = new Set(pending.map((request) => request.PutRequest.Item.pk));
    return items.map((item) => !unwritten.has(item.pk));
  }
}

async function encodeEntry(entry: CachedGeneration): Promise<Pick<CacheItem, 'format' | 'body'>> {
  const json = JSON.stringify({
    deltas: entry.deltas,
    finishReason: entry.finishReason,
    usage: entry.usage,
    createdAt: entry.createdAt,
  });
  const bytes = Buffer.from(json, 'utf8');
  if (bytes.byteLength > COMPRESS_ABOVE_BYTES) {
    const compressed = await gzipAsync(bytes);
    if (compressed.byteLength < bytes.byteLength) return { format: 'json+gzip', body: compressed };
  }
  return { format: 'json', body: json };
}

async function decodeEntry(item: Partial<CacheItem>): Promise<CachedGeneration> {
  let json: string;
  if (item.format === 'json' && typeof item.body === 'string') json = item.body;
  else if (item.format === 'json+gzip' && item.body instanceof Uint8Array) json = (await gunzipAsync(item.body)).toString('utf8');
  else throw new CorruptCacheEntryError(`cache item ${item.pk} has format ${String(item.format)} and a body it cannot hold`);
  const parsed = entrySchema.safeParse(JSON.parse(json));
  if (!parsed.success) throw new CorruptCacheEntryError(`cache item ${item.pk} does not hold a cached generation`);
  return parsed.data;
}

/** DynamoDB's item size: attribute names plus values (UTF-8 strings, raw binary, numbers up to 21 bytes). */
function itemBytes(item: CacheItem): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(item)) {
    bytes += Buffer.byteLength(name, 'utf8');
    if (typeof value === 'string') bytes += Buffer.byteLength(value, 'utf8');
    else if (value instanceof Uint8Array) bytes += value.byteLength;
    else bytes += 21;
  }
  return bytes;
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
