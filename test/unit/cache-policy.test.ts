import { describe, expect, it } from 'vitest';
import type { GenerationParams } from '../../src/backends/model-backend.js';
import {
  CacheHeaderError,
  MAX_CACHE_TTL_SECONDS,
  cacheStatus,
  decideCaching,
  isDeterministic,
  type CacheDecision,
} from '../../src/cache/index.js';

const config = { ttlSeconds: 3600 };
const greedy: GenerationParams = { temperature: 0, maxTokens: 8 };
const seeded: GenerationParams = { temperature: 0.8, seed: 7 };
const sampled: GenerationParams = { temperature: 0.8 };
const defaults: GenerationParams = {};

function decide(headers: Record<string, string>, params: GenerationParams = greedy): CacheDecision {
  return decideCaching(new Headers(headers), params, config);
}

const NEITHER = { read: false, write: false, ttlSeconds: 0 };

describe('decideCaching without cache headers', () => {
  it('reads and writes deterministic requests with the configured TTL', () => {
    for (const params of [greedy, seeded, { temperature: 1, topK: 1 }, { seed: 0 }]) {
      expect(decide({}, params)).toMatchObject({ read: true, write: true, ttlSeconds: 3600 });
    }
  });

  it('bypasses sampled requests, including the default temperature of 1', () => {
    expect(decide({}, sampled)).toMatchObject(NEITHER);
    expect(decide({}, defaults)).toMatchObject(NEITHER);
    expect(decide({}, sampled).reason).toMatch(/not deterministic/);
  });

  it('reads but never writes when the configured TTL is 0', () => {
    expect(decideCaching(new Headers(), greedy, { ttlSeconds: 0 })).toMatchObject({ read: true, write: false, ttlSeconds: 0 });
  });
});

describe('x-aigw-cache-ttl', () => {
  it('opts any request in, with that TTL', () => {
    expect(decide({ 'x-aigw-cache-ttl': '120' }, sampled)).toMatchObject({ read: true, write: true, ttlSeconds: 120 });
    expect(decide({ 'x-aigw-cache-ttl': ' 60 ' }, greedy)).toMatchObject({ read: true, write: true, ttlSeconds: 60 });
    expect(decide({ 'x-aigw-cache-ttl': String(MAX_CACHE_TTL_SECONDS) }, greedy).ttlSeconds).toBe(MAX_CACHE_TTL_SECONDS);
    expect(decide({ 'x-aigw-cache-ttl': '120' }, sampled).reason).toBe('x-aigw-cache-ttl: 120');
  });

  it('0 reads but does not store', () => {
    expect(decide({ 'x-aigw-cache-ttl': '0' }, sampled)).toMatchObject({ read: true, write: false, ttlSeconds: 0 });
    expect(decide({ 'x-aigw-cache-ttl': '0' }, greedy)).toMatchObject({ read: true, write: false, ttlSeconds: 0 });
  });

  it('rejects anything but a whole number of seconds in range, naming the header', () => {
    for (const bad of ['', '-1', '1.5', '1e3', 'abc', '0x10', '60, 60', String(MAX_CACHE_TTL_SECONDS + 1), '99999999999999999999']) {
      let thrown: unknown;
      try {
        decide({ 'x-aigw-cache-ttl': bad });
      } catch (error) {
        thrown = error;
      }
      expect(thrown, `value '${bad}'`).toBeInstanceOf(CacheHeaderError);
      expect((thrown as CacheHeaderError).header).toBe('x-aigw-cache-ttl');
    }
  });
});

describe('x-aigw-skip-cache', () => {
  it('true: neither read nor write, whatever else is set', () => {
    expect(decide({ 'x-aigw-skip-cache': 'true' })).toMatchObject(NEITHER);
    expect(decide({ 'x-aigw-skip-cache': 'TRUE' })).toMatchObject(NEITHER);
    expect(decide({ 'x-aigw-skip-cache': 'true', 'x-aigw-cache-ttl': '60' }, sampled)).toMatchObject(NEITHER);
    expect(decide({ 'x-aigw-skip-cache': 'true', 'cache-control': 'no-cache' })).toMatchObject(NEITHER);
  });

  it('false changes nothing', () => {
    expect(decide({ 'x-aigw-skip-cache': 'false' })).toEqual(decide({}));
  });

  it('rejects other values', () => {
    for (const bad of ['yes', '1', '', 'true, true']) {
      expect(() => decide({ 'x-aigw-skip-cache': bad })).toThrow(CacheHeaderError);
    }
  });

  it('a malformed TTL is an error even when the cache is skipped', () => {
    expect(() => decide({ 'x-aigw-skip-cache': 'true', 'x-aigw-cache-ttl': 'soon' })).toThrow(CacheHeaderError);
  });
});

describe('Cache-Control', () => {
  it('no-store: neither read nor write, even with a TTL header', () => {
    expect(decide({ 'cache-control': 'no-store' })).toMatchObject(NEITHER);
    expect(decide({ 'cache-control': 'No-Store' })).toMatchObject(NEITHER);
    expect(decide({ 'cache-control': 'no-store', 'x-aigw-cache-ttl': '60' }, sampled)).toMatchObject(NEITHER);
  });

  it('no-cache: skips the read and stores the fresh result', () => {
    expect(decide({ 'cache-control': 'no-cache' })).toMatchObject({ read: false, write: true, ttlSeconds: 3600 });
    expect(decide({ 'cache-control': 'max-age=0, no-cache' })).toMatchObject({ read: false, write: true });
    expect(decide({ 'cache-control': 'no-cache', 'x-aigw-cache-ttl': '90' }, sampled)).toMatchObject({ read: false, write: true, ttlSeconds: 90 });
  });

  it('no-cache stores nothing a request could not store without it', () => {
    expect(decide({ 'cache-control': 'no-cache' }, sampled)).toMatchObject(NEITHER);
    expect(decide({ 'cache-control': 'no-cache', 'x-aigw-cache-ttl': '0' })).toMatchObject(NEITHER);
  });

  it('no-store wins over no-cache', () => {
    expect(decide({ 'cache-control': 'no-cache, no-store' })).toMatchObject(NEITHER);
  });

  it('other directives change nothing', () => {
    expect(decide({ 'cache-control': 'max-age=600, private' })).toEqual(decide({}));
  });
});

describe('every combination', () => {
  const skips = [undefined, 'true', 'false'];
  const controls = [undefined, 'no-cache', 'no-store', 'no-cache, no-store', 'max-age=0'];
  const ttls = [undefined, '0', '45'];
  const paramSets = [greedy, seeded, sampled, defaults];

  it('holds the rules for all 180 header and parameter combinations', () => {
    let count = 0;
    for (const skip of skips) {
      for (const control of controls) {
        for (const ttl of ttls) {
          for (const params of paramSets) {
            const headers: Record<string, string> = {};
            if (skip !== undefined) headers['x-aigw-skip-cache'] = skip;
            if (control !== undefined) headers['cache-control'] = control;
            if (ttl !== undefined) headers['x-aigw-cache-ttl'] = ttl;
            const d = decide(headers, params);
            const label = JSON.stringify({ headers, params });
            count++;

            const off = skip === 'true' || control?.includes('no-store');
            const eligible = ttl !== undefined || isDeterministic(params);
            const expectedTtl = ttl === undefined ? 3600 : Number(ttl);
            expect(d.read, label).toBe(!off && eligible && !control?.includes('no-cache'));
            expect(d.write, label).toBe(!off && eligible && expectedTtl > 0);
            expect(d.ttlSeconds, label).toBe(d.write ? expectedTtl : 0);
            expect(d.reason, label).not.toBe('');
          }
        }
      }
    }
    expect(count).toBe(180);
  });
});

describe('cacheStatus', () => {
  it('is HIT or MISS after a lookup and BYPASS without one', () => {
    expect(cacheStatus(decide({}), true)).toBe('HIT');
    expect(cacheStatus(decide({}), false)).toBe('MISS');
    expect(cacheStatus(decide({ 'cache-control': 'no-cache' }), false)).toBe('BYPASS');
    expect(cacheStatus(decide({ 'x-aigw-skip-cache': 'true' }), false)).toBe('BYPASS');
    expect(cacheStatus(decide({}, sampled), false)).toBe('BYPASS');
  });
});
