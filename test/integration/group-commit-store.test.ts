// Group commit against DynamoDB Local: many requests finishing together cost fewer writes, and
// every one of them still counts (the usage roll-up) or is stored (the response cache).
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { readUsage, UsageRollup } from '../../src/admission/index.js';
import { ResponseCache } from '../../src/cache/index.js';
import type { Store } from '../../src/store/index.js';
import { recordDynamoDbCalls } from '../helpers/dynamodb-calls.js';
import { createTestStore } from '../setup/store.js';

let store: Store;

beforeAll(async () => {
  store = await createTestStore('group-commit');
});

describe('usage roll-up under load', () => {
  it('sums 60 requests of two keys exactly, in far fewer writes than requests', async () => {
    const calls = recordDynamoDbCalls(store);
    const rollup = new UsageRollup(store, 5_000);
    const day = '2026-12-01';
    const adds = Array.from({ length: 60 }, (_, i) =>
      rollup.add(i % 2 === 0 ? 'key_even' : 'key_odd', day, { kind: 'generated', promptTokens: 10, completionTokens: i, costMicros: 7, version: 'm@1' }),
    );
    await Promise.all(adds);
    const rows = await readUsage(store, { from: day, to: day });
    const even = rows.find((r) => r.keyId === 'key_even')!;
    const odd = rows.find((r) => r.keyId === 'key_odd')!;
    const sum = (parity: number) => Array.from({ length: 60 }, (_, i) => i).filter((i) => i % 2 === parity).reduce((a, b) => a + b, 0);
    expect(even).toMatchObject({ requests: 30, promptTokens: 300, completionTokens: sum(0), costMicros: 210 });
    expect(odd).toMatchObject({ requests: 30, promptTokens: 300, completionTokens: sum(1), costMicros: 210 });
    expect(even.byVersion['m@1']).toMatchObject({ requests: 30, completionTokens: sum(0) });
    const writes = calls.calls.filter((c) => c.command === 'UpdateCommand');
    // The first request alone, then the rest together: one write per key for each batch.
    expect(writes.length).toBeLessThan(10);
    expect(writes.every((c) => !c.failed)).toBe(true);
  });
});

describe('response cache under load', () => {
  it('stores 40 entries written at once, each readable, in BatchWriteItem calls of at most 25', async () => {
    const calls = recordDynamoDbCalls(store);
    const cache = new ResponseCache(store, {});
    const hashes = Array.from({ length: 40 }, () => randomBytes(32).toString('hex'));
    const entry = (i: number) => ({ deltas: [`answer ${i}`], finishReason: 'stop' as const, usage: { promptTokens: 3, completionTokens: 2 }, createdAt: Math.floor(Date.now() / 1000) });
    const results = await Promise.all(hashes.map((h, i) => cache.put(h, entry(i), 60)));
    expect(results).toEqual(hashes.map(() => 'stored'));
    const batches = calls.calls.filter((c) => c.command === 'BatchWriteCommand');
    expect(batches.length).toBeLessThan(40);
    expect(batches.length).toBeGreaterThanOrEqual(2); // 40 items never fit one call of 25
    // A fresh instance (nothing in memory) reads every entry back from the table.
    const reader = new ResponseCache(store, {});
    const read = await Promise.all(hashes.map((h) => reader.get(h)));
    expect(read.map((e) => e?.deltas[0])).toEqual(hashes.map((_, i) => `answer ${i}`));
  });

  it('two writes of one key in a batch store the later entry', async () => {
    const cache = new ResponseCache(store, {});
    const h = randomBytes(32).toString('hex');
    const blocker = cache.put(randomBytes(32).toString('hex'), { deltas: ['x'], finishReason: 'stop', usage: { promptTokens: 1, completionTokens: 1 }, createdAt: 1 }, 60);
    const first = cache.put(h, { deltas: ['first'], finishReason: 'stop', usage: { promptTokens: 1, completionTokens: 1 }, createdAt: 1 }, 60);
    const second = cache.put(h, { deltas: ['second'], finishReason: 'stop', usage: { promptTokens: 1, completionTokens: 1 }, createdAt: 2 }, 60);
    expect(await Promise.all([blocker, first, second])).toEqual(['stored', 'stored', 'stored']);
    expect((await new ResponseCache(store, {}).get(h))?.deltas).toEqual(['second']);
  });
});
