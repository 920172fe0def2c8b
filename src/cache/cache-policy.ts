// Whether one request reads and/or writes the response cache, from its parameters and headers,
// and the `x-aigw-cache` value the response reports.
import type { GenerationParams } from '../backends/model-backend.js';
import type { CacheConfig } from './cache-config.js';
import { CacheHeaderError } from './errors.js';

export const CACHE_TTL_HEADER = 'x-aigw-cache-ttl';
export const SKIP_CACHE_HEADER = 'x-aigw-skip-cache';
export const CACHE_STATUS_HEADER = 'x-aigw-cache';

/** A year: a longer client TTL is far more likely a unit mistake than an intent. */
export const MAX_CACHE_TTL_SECONDS = 365 * 24 * 3600;

export interface CacheDecision {
  /** Look the request up before generating. */
  read: boolean;
  /** Store a freshly generated result. */
  write: boolean;
  /** Lifetime of a stored entry; 0 whenever `write` is false. */
  ttlSeconds: number;
  /** Why, for the request log. */
  reason: string;
}

/** HIT: served from cache. MISS: looked up, not found, generated. BYPASS: not looked up. */
export type CacheStatus = 'HIT' | 'MISS' | 'BYPASS';

/**
 * The rules, in order:
 * - `x-aigw-skip-cache: true` or `Cache-Control: no-store`: neither read nor write.
 * - `x-aigw-cache-ttl: <seconds>` makes any request cacheable with that TTL (0: read, never store);
 *   without it only deterministic requests are (temperature 0, top_k 1, or a seed), with the config TTL.
 * - `Cache-Control: no-cache` skips the read; a cacheable request still stores its fresh result.
 * Malformed values of the two aigw headers throw CacheHeaderError (the gateway answers 400),
 * even when another header would bypass the cache anyway.
 */
export function decideCaching(headers: Headers, params: GenerationParams, config: Pick<CacheConfig, 'ttlSeconds'>): CacheDecision {
  const ttlOverride = parseTtlHeader(headers.get(CACHE_TTL_HEADER));
  const skip = parseSkipHeader(headers.get(SKIP_CACHE_HEADER));
  const directives = cacheControlDirectives(headers.get('cache-control'));

  if (skip) return bypass(`${SKIP_CACHE_HEADER}: true`);
  if (directives.has('no-store')) return bypass('cache-control: no-store');
  if (ttlOverride === undefined && !isDeterministic(params)) return bypass('not deterministic (temperature > 0, no seed)');

  const ttlSeconds = ttlOverride ?? config.ttlSeconds;
  const read = !directives.has('no-cache');
  const write = ttlSeconds > 0;
  if (!read && !write) return bypass('cache-control: no-cache with a TTL of 0');
  const source = ttlOverride === undefined ? 'deterministic' : `${CACHE_TTL_HEADER}: ${ttlOverride}`;
  const reason = read ? source : `${source}, cache-control: no-cache`;
  return { read, write, ttlSeconds: write ? ttlSeconds : 0, reason };
}

/** The `x-aigw-cache` response header value. */
export function cacheStatus(decision: Pick<CacheDecision, 'read'>, hit: boolean): CacheStatus {
  if (!decision.read) return 'BYPASS';
  return hit ? 'HIT' : 'MISS';
}

/** Same tokens every time: greedy decoding (the sampler's argmax cases) or a fixed random sequence. */
export function isDeterministic(params: GenerationParams): boolean {
  return params.temperature === 0 || params.topK === 1 || params.seed !== undefined;
}

function bypass(reason: string): CacheDecision {
  return { read: false, write: false, ttlSeconds: 0, reason };
}

function parseTtlHeader(value: string | null): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  const seconds = Number(trimmed);
  if (!/^\d+$/.test(trimmed) || seconds > MAX_CACHE_TTL_SECONDS) {
    throw new CacheHeaderError(
      CACHE_TTL_HEADER,
      `${CACHE_TTL_HEADER} must be a whole number of seconds from 0 to ${MAX_CACHE_TTL_SECONDS}, got '${value}'`,
    );
  }
  return seconds;
}

function parseSkipHeader(value: string | null): boolean {
  if (value === null) return false;
  const normalized = value.trim().toLowerCase();
  if (normalized === 'true') return true;
  if (normalized === 'false') return false;
  throw new CacheHeaderError(SKIP_CACHE_HEADER, `${SKIP_CACHE_HEADER} must be 'true' or 'false', got '${value}'`);
}

/** Directive names, lower-cased; arguments (`max-age=0`) are not used by the cache. */
function cacheControlDirectives(value: string | null): Set<string> {
  const names = new Set<string>();
  for (const part of (value ?? '').split(',')) {
    const name = part.split('=')[0].trim().toLowerCase();
    if (name) names.add(name);
  }
  return names;
}
