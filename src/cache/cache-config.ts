// The `[cache]` section as the cache sees it; the config loader fills it from aigw.toml.

export interface CacheConfig {
  /** How long an entry lives when the request does not set `x-aigw-cache-ttl`; default 3600. */
  ttlSeconds: number;
  /** false: entries are per API key (a key never sees another key's answers); true: one pool. */
  shared: boolean;
  /** Largest stored entry (after compression); bigger ones are skipped. Default 350_000. */
  maxEntryBytes?: number;
}

export const DEFAULT_CACHE_TTL_SECONDS = 3600;

/** DynamoDB's item limit is 400 KB; the margin covers the key, ttl and other attributes. */
export const DEFAULT_MAX_ENTRY_BYTES = 350_000;
