// Admission control against DynamoDB Local: limits hold exactly with 50+ concurrent requests,
// dead requests are reclaimed after their lease, windows roll over, the store being down is fast.
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  AdmissionControl,
  AdmissionRejectedError,
  AdmissionUnavailableError,
  type Admission,
  type AdmissionRequest,
} from '../../src/admission/index.js';
import { createDynamoDbClient, itemKeys, type Store } from '../../src/store/index.js';
import { createTestStore } from '../setup/store.js';

let store: Store;
let keyCounter = 0;
const newKeyId = () => `key_test${String(++keyCounter).padStart(8, '0')}`;
const FREE = { inputMicrosPerMillionTokens: 0, outputMicrosPerMillionTokens: 0 };
const DOLLAR_PER_MILLION = { inputMicrosPerMillionTokens: 1_000_000, outputMicrosPerMillionTokens: 1_000_000 };

beforeAll(async () => {
  store = await createTestStore('admission');
});

function request(keyId: string, limits: AdmissionRequest['limits'], more: Partial<AdmissionRequest> = {}): AdmissionRequest {
  return { keyId, limits, promptTokens: 10, maxTokens: 10, price: FREE, ...more };
}

async function settled<T>(promises: Promise<T>[]) {
  const results = await Promise.allSettled(promises);
  const admitted = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const rejected = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
  return { admitted, rejected };
}

async function limitsItem(keyId: string): Promise<Record<string, unknown>> {
  const out = await store.client.send(new GetCommand({ TableName: store.tableName, Key: itemKeys.keyLimits(keyId), ConsistentRead: true }));
  return out.Item ?? {};
}

describe('exactness under concurrency', () => {
  it('a rate limit of L admits exactly L of 60 concurrent requests', async () => {
    const keyId = newKeyId();
    // Pin the clock inside one minute so the window cannot roll over during the burst.
    const pinned = new AdmissionControl(store, { leaseSeconds: 60, now: () => Date.UTC(2026, 10, 27, 12, 0, 30) });
    const { admitted, rejected } = await settled(Array.from({ length: 60 }, () => pinned.admit(request(keyId, { requestsPerMinute: 17 }))));
    expect(admitted).toHaveLength(17);
    expect(rejected).toHaveLength(43);
    for (const error of rejected) {
      expect(error).toBeInstanceOf(AdmissionRejectedError);
      expect(error.reason).toBe('requests_per_minute');
      expect(error.retryAfterSeconds).toBe(30);
    }
    const remaining = admitted.map((a) => a.rateLimits.requests!.remaining).sort((a, b) => a - b);
    expect(remaining).toEqual(Array.from({ length: 17 }, (_, i) => i));
  });

  it('never lets more than the concurrency cap run at once', async () => {
    const control = new AdmissionControl(store, { leaseSeconds: 60 });
    const keyId = newKeyId();
    let inFlight = 0;
    let peak = 0;
    let served = 0;
    let refusals = 0;
    const one = async () => {
      // Each client retries on refusal, like a real client honouring Retry-After (shortened).
      for (;;) {
        let admission: Admission;
        try {
          admission = await control.admit(request(keyId, { maxConcurrentRequests: 4 }));
        } catch (error) {
          if (error instanceof AdmissionRejectedError && error.reason === 'max_concurrent_requests') {
            refusals++;
            await new Promise((r) => setTimeout(r, 5));
            continue;
          }
          throw error;
        }
        inFlight++;
        peak = Math.max(peak, inFlight);
        await new Promise((r) => setTimeout(r, 5 + Math.random() * 10));
        inFlight--;
        served++;
        await control.settle(admission, { promptTokens: 10, completionTokens: 3 });
        return;
      }
    };
    await Promise.all(Array.from({ length: 50 }, one));
    expect(served).toBe(50);
    expect(peak).toBeLessThanOrEqual(4);
    // The cap really was in the way: clients were turned away and had to come back.
    expect(refusals).toBeGreaterThan(0);
    expect((await limitsItem(keyId)).conc).toBe(0);
  });

  it('never overspends a budget, and ends within one request of it', async () => {
    // A pinned clock: the day's counters must not roll over at midnight mid-test.
    const control = new AdmissionControl(store, { leaseSeconds: 60, now: () => Date.UTC(2026, 10, 27, 12, 0, 0) });
    const keyId = newKeyId();
    const budget = 20_000; // $0.02 at $1 per million tokens: 20,000 tokens
    // Each request may cost up to 100 + 300 = 400 micro-dollars; the actual cost varies.
    const one = async (i: number) => {
      const admission = await control.admit(request(keyId, { budgetMicrosPerDay: budget }, { promptTokens: 100, maxTokens: 300, price: DOLLAR_PER_MILLION }));
      await new Promise((r) => setTimeout(r, Math.random() * 10));
      return control.settle(admission, { promptTokens: 100, completionTokens: (i * 37) % 301 });
    };
    let spent = 0;
    let refused = 0;
    // Waves of 60 concurrent requests until the budget refuses every request of a wave.
    for (let wave = 0; wave < 20; wave++) {
      const { admitted, rejected } = await settled(Array.from({ length: 60 }, (_, i) => one(wave * 60 + i)));
      spent += admitted.reduce((sum, cost) => sum + cost, 0);
      refused += rejected.length;
      for (const error of rejected) expect(error).toMatchObject({ reason: 'budget_per_day', quota: true });
      if (admitted.length === 0) break;
    }
    expect(refused).toBeGreaterThan(0);
    expect(spent).toBeLessThanOrEqual(budget);
    expect(spent).toBeGreaterThan(budget - 400);
    const item = await limitsItem(keyId);
    const day = '2026-11-27';
    expect(item[`spent_d_${day}`]).toBe(spent);
    // Nothing is still reserved once every request has settled.
    expect(item[`usd_d_${day}`]).toBe(spent);
    expect(item.conc).toBe(0);
  });
});

describe('dead requests and windows', () => {
  it("reclaims a killed request's slot and reservation after its lease expires", async () => {
    let now = Date.UTC(2026, 10, 27, 10, 0, 0);
    const control = new AdmissionControl(store, { leaseSeconds: 30, now: () => now });
    const keyId = newKeyId();
    const limits = { maxConcurrentRequests: 1, budgetMicrosPerDay: 500 };
    const priced = { promptTokens: 100, maxTokens: 300, price: DOLLAR_PER_MILLION };
    await control.admit(request(keyId, limits, priced)); // never settled: the process "died"
    await expect(control.admit(request(keyId, limits, priced))).rejects.toMatchObject({ reason: 'max_concurrent_requests' });
    now += 29_000;
    await expect(control.admit(request(keyId, limits, priced))).rejects.toMatchObject({ reason: 'max_concurrent_requests' });
    now += 2_000;
    const admission = await control.admit(request(keyId, limits, priced));
    const item = await limitsItem(keyId);
    expect(item.conc).toBe(1);
    expect(item['usd_d_2026-11-27']).toBe(400); // the dead request's 400 were released
    expect(Object.keys(item).filter((k) => k.startsWith('h_'))).toEqual([`h_${admission.holdId}`]);
    // The live request settles normally.
    expect(await control.settle(admission, { promptTokens: 100, completionTokens: 50 })).toBe(150);
    expect((await limitsItem(keyId)).conc).toBe(0);
  });

  it('a concurrency refusal says when the oldest hold expires (a dead request frees its slot then)', async () => {
    let now = Date.UTC(2026, 10, 27, 10, 0, 0);
    const control = new AdmissionControl(store, { leaseSeconds: 900, now: () => now });
    const keyId = newKeyId();
    const limits = { maxConcurrentRequests: 2 };
    await control.admit(request(keyId, limits)); // dies without settling
    now += 100_000;
    await control.admit(request(keyId, limits)); // also never settles
    now += 50_000;
    await expect(control.admit(request(keyId, limits))).rejects.toMatchObject({ reason: 'max_concurrent_requests', retryAfterSeconds: 750 });
    now += 750_000;
    // At the announced time the first hold is reclaimed and the request gets in.
    await expect(control.admit(request(keyId, limits))).resolves.toMatchObject({ keyId });
  });

  it('a request that settles after its hold was reclaimed still counts its spend', async () => {
    let now = Date.UTC(2026, 10, 27, 10, 0, 0);
    const control = new AdmissionControl(store, { leaseSeconds: 10, now: () => now });
    const keyId = newKeyId();
    const limits = { maxConcurrentRequests: 1 };
    const slow = await control.admit(request(keyId, limits, { price: DOLLAR_PER_MILLION }));
    now += 11_000;
    const next = await control.admit(request(keyId, limits, { price: DOLLAR_PER_MILLION })); // reclaims the slow one's hold
    await control.settle(slow, { promptTokens: 10, completionTokens: 10 });
    await control.settle(next, { promptTokens: 10, completionTokens: 10 });
    const item = await limitsItem(keyId);
    expect(item.conc).toBe(0);
    expect(item['spent_d_2026-11-27']).toBe(40);
    expect(item['usd_d_2026-11-27']).toBe(40);
  });

  it('rolls the minute window over and removes past windows when settling', async () => {
    let now = Date.UTC(2026, 10, 27, 10, 0, 50);
    const control = new AdmissionControl(store, { leaseSeconds: 60, now: () => now });
    const keyId = newKeyId();
    const limits = { requestsPerMinute: 2 };
    const first = await control.admit(request(keyId, limits));
    await control.settle(first, { promptTokens: 10, completionTokens: 1 });
    await control.settle(await control.admit(request(keyId, limits)), { promptTokens: 10, completionTokens: 1 });
    await expect(control.admit(request(keyId, limits))).rejects.toMatchObject({ reason: 'requests_per_minute', retryAfterSeconds: 10 });
    now += 10_000;
    const nextMinute = await control.admit(request(keyId, limits));
    expect(nextMinute.rateLimits.requests).toEqual({ limit: 2, remaining: 1, resetSeconds: 60 });
    await control.settle(nextMinute, { promptTokens: 10, completionTokens: 1 });
    const attributes = Object.keys(await limitsItem(keyId)).filter((k) => k.startsWith('rpm_'));
    expect(attributes).toEqual([`rpm_${Math.floor(now / 60_000)}`]);
  });

  it('counts prompt tokens at admission and completion tokens at settlement against tokens per minute', async () => {
    const now = Date.UTC(2026, 10, 27, 10, 0, 0);
    const control = new AdmissionControl(store, { leaseSeconds: 60, now: () => now });
    const keyId = newKeyId();
    const limits = { tokensPerMinute: 100 };
    const a = await control.admit(request(keyId, limits, { promptTokens: 40 }));
    expect(a.rateLimits.tokens).toMatchObject({ limit: 100, remaining: 60 });
    await control.settle(a, { promptTokens: 40, completionTokens: 30 });
    // 70 used: a 40-token prompt no longer fits, a 30-token one does.
    await expect(control.admit(request(keyId, limits, { promptTokens: 40 }))).rejects.toMatchObject({ reason: 'tokens_per_minute' });
    const b = await control.admit(request(keyId, limits, { promptTokens: 30 }));
    expect(b.rateLimits.tokens!.remaining).toBe(0);
  });

  it('refuses at once a request that could never fit its budget', async () => {
    const control = new AdmissionControl(store, { leaseSeconds: 60 });
    await expect(
      control.admit(request(newKeyId(), { budgetMicrosPerMonth: 100 }, { promptTokens: 100, maxTokens: 1000, price: DOLLAR_PER_MILLION })),
    ).rejects.toMatchObject({ reason: 'budget_per_month', quota: true });
  });

  it('caps requests in flight per model across keys', async () => {
    const control = new AdmissionControl(store, { leaseSeconds: 60 });
    const model = { id: `model-${newKeyId()}`, maxConcurrentRequests: 2 };
    const a = await control.admit(request(newKeyId(), {}, { model }));
    const b = await control.admit(request(newKeyId(), {}, { model }));
    const keyId = newKeyId();
    await expect(control.admit(request(keyId, {}, { model }))).rejects.toMatchObject({ reason: 'model_max_concurrent_requests' });
    // The refused request did not keep its key's slot.
    expect((await limitsItem(keyId)).conc).toBe(0);
    await control.settle(a, { promptTokens: 10, completionTokens: 1 });
    const c = await control.admit(request(keyId, {}, { model }));
    await control.settle(b, { promptTokens: 10, completionTokens: 1 });
    await control.settle(c, { promptTokens: 10, completionTokens: 1 });
  });

  it('counts cache hits toward request limits only', async () => {
    const control = new AdmissionControl(store, { leaseSeconds: 60, now: () => Date.UTC(2026, 10, 27, 10, 0, 0) });
    const keyId = newKeyId();
    const limits = { requestsPerMinute: 2, budgetMicrosPerDay: 0 };
    const status = await control.admitCached(keyId, limits);
    expect(status.requests).toMatchObject({ limit: 2, remaining: 1 });
    await control.admitCached(keyId, limits);
    await expect(control.admitCached(keyId, limits)).rejects.toMatchObject({ reason: 'requests_per_minute' });
  });
});

describe('usage roll-up', () => {
  it('adds each settled request to its key and day', async () => {
    const now = Date.UTC(2026, 10, 27, 10, 0, 0);
    const control = new AdmissionControl(store, { leaseSeconds: 60, now: () => now });
    const keyId = newKeyId();
    for (const completionTokens of [5, 7]) {
      const admission = await control.admit(request(keyId, {}, { promptTokens: 100, maxTokens: 10, price: DOLLAR_PER_MILLION }));
      await control.settle(admission, { promptTokens: 100, completionTokens });
    }
    const out = await store.client.send(new GetCommand({ TableName: store.tableName, Key: { pk: `USAGE#${keyId}#2026-11-27`, sk: 'USAGE' } }));
    expect(out.Item).toMatchObject({ requests: 2, promptTokens: 200, completionTokens: 12, costMicros: 212 });
  });
});

describe('a store that is down', () => {
  it('fails fast with a typed error, never hangs', async () => {
    const dead = { client: createDynamoDbClient({ endpoint: 'http://127.0.0.1:1', region: 'us-east-1', maxAttempts: 1 }), tableName: 'aigw' };
    const control = new AdmissionControl(dead, { leaseSeconds: 60 });
    await expect(control.admit(request(newKeyId(), { requestsPerMinute: 5 }))).rejects.toBeInstanceOf(AdmissionUnavailableError);
  });
});
