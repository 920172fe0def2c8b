// The in-process cache of API key lookups by hash: how long a revocation made elsewhere can go
// unseen here (ttlMs), and how long an unknown key stays unknown (negativeTtlMs).
import type { ApiKeyRecord } from './api-keys.js';

interface CacheEntry {
  record: ApiKeyRecord | null;
  expiresAt: number;
}

export interface ApiKeyCacheOptions {
  /** How long a found key record is trusted: the bound on how late a revocation bites elsewhere. */
  ttlMs?: number;
  /** How long an unknown key stays unknown; shorter, so a new key works almost at once. */
  negativeTtlMs?: number;
  /** Bounds memory against floods of random well-formed keys; the oldest entry goes first. */
  maxEntries?: number;
}

/**
 * In-process cache of key lookups by hash. A revocation made on this instance clears the entry
 * at once; other instances see it after at most `ttlMs` (default 5 s).
 */
export class ApiKeyCache {
  readonly ttlMs: number;
  readonly negativeTtlMs: number;
  readonly maxEntries: number;
  private readonly entries = new Map<string, CacheEntry>();

  constructor(options: ApiKeyCacheOptions = {}) {
    this.ttlMs = options.ttlMs ?? 5_000;
    this.negativeTtlMs = options.negativeTtlMs ?? 1_000;
    this.maxEntries = options.maxEntries ?? 10_000;
  }

  /** The cached lookup result (null: known unknown), or undefined on a miss. */
  get(tableName: string, keyHash: string): ApiKeyRecord | null | undefined {
    const id = `${tableName}/${keyHash}`;
    const entry = this.entries.get(id);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.entries.delete(id);
      return undefined;
    }
    return entry.record;
  }

  set(tableName: string, keyHash: string, record: ApiKeyRecord | null): void {
    const id = `${tableName}/${keyHash}`;
    const ttl = record === null ? this.negativeTtlMs : this.ttlMs;
    if (ttl <= 0) return;
    this.entries.delete(id);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(id, { record, expiresAt: Date.now() + ttl });
  }

  delete(tableName: string, keyHash: string): void {
    this.entries.delete(`${tableName}/${keyHash}`);
  }

  clear(): void {
    this.entries.clear();
  }
}

/** The cache `authenticateApiKey` and `revokeApiKey` share unless given another. */
export const defaultApiKeyCache = new ApiKeyCache();

export interface ApiKeyCacheOption {
  cache?: ApiKeyCache;
}
