// Rate limits, concurrency caps, budgets, the response cache and CORS through the real gateway
// (DynamoDB Local, onnxruntime, the Node server), with raw HTTP and the official openai client.
import OpenAI from 'openai';
import { afterAll, describe, expect, it } from 'vitest';
import type { ModelBackend } from '../../src/backends/model-backend.js';
import { createDynamoDbClient } from '../../src/store/index.js';
import { startTestGateway, TEST_MODEL_ID, type TestGateway } from '../helpers/test-gateway.js';
import { waitForRoomInMinute } from '../helpers/minute-window.js';

const gateways: TestGateway[] = [];
afterAll(async () => {
  await Promise.all(gateways.map((g) => g.close()));
});

async function gateway(options: Parameters<typeof startTestGateway>[0]): Promise<TestGateway> {
  const gw = await startTestGateway(options);
  gateways.push(gw);
  return gw;
}

function chat(gw: TestGateway, body: Record<string, unknown> = {}, headers: Record<string, string> = {}, key = gw.apiKey) {
  return fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: TEST_MODEL_ID, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2, temperature: 0.8, ...body }),
  });
}

const SKIP = { 'x-aigw-skip-cache': 'true' };

describe('rate limits', () => {
  it('admits exactly the limit of 60 concurrent requests and answers the rest 429 with Retry-After', async () => {
    const gw = await gateway({ plans: { tight: { requests_per_minute: 13 } }, key: { plan: 'tight' } });
    // Start the burst well inside a minute, and note whether it still crossed into the next one.
    await waitForRoomInMinute(15);
    const firstMinute = Math.floor(Date.now() / 60_000);
    const responses = await Promise.all(Array.from({ length: 60 }, () => chat(gw, {}, SKIP)));
    const minutesCrossed = Math.floor(Date.now() / 60_000) - firstMinute;
    const ok = responses.filter((r) => r.status === 200);
    const limited = responses.filter((r) => r.status === 429);
    if (minutesCrossed === 0) expect(ok.length).toBe(13);
    else {
      // Each window admits at most its limit; the requests that arrive after the boundary may be
      // fewer than 13, so the total lies between one limit and one limit per window touched.
      expect(ok.length).toBeGreaterThanOrEqual(13);
      expect(ok.length).toBeLessThanOrEqual(13 * (minutesCrossed + 1));
    }
    expect(ok.length + limited.length).toBe(60);
    const body = (await limited[0]!.json()) as { error: { code: string; type: string } };
    expect(body.error).toMatchObject({ code: 'rate_limit_exceeded', type: 'requests' });
    const retryAfter = Number(limited[0]!.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(ok[0]!.headers.get('x-ratelimit-limit-requests')).toBe('13');
    const remaining = ok.map((r) => Number(r.headers.get('x-ratelimit-remaining-requests')));
    expect(Math.min(...remaining)).toBe(0);
    expect(ok[0]!.headers.get('x-ratelimit-reset-requests')).toMatch(/^\d+s$/);
  });

  it('surfaces as the openai client RateLimitError', async () => {
    const gw = await gateway({ plans: { tiny: { requests_per_minute: 1 } }, key: { plan: 'tiny' } });
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: gw.apiKey, maxRetries: 0 });
    await client.chat.completions.create({ model: TEST_MODEL_ID, messages: [{ role: 'user', content: 'a' }], max_tokens: 1 });
    const error = await client.chat.completions.create({ model: TEST_MODEL_ID, messages: [{ role: 'user', content: 'b' }], max_tokens: 1 }).catch((e) => e);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect(error.code).toBe('rate_limit_exceeded');
  });

  it('lets a key override its plan', async () => {
    const gw = await gateway({ plans: { tiny: { requests_per_minute: 1 } }, key: { plan: 'tiny', limits: { requestsPerMinute: 3 } } });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await chat(gw, {}, SKIP)).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
  });
});

describe('concurrency cap', () => {
  it('is never exceeded, observed from the backend side', async () => {
    let inFlight = 0;
    let peak = 0;
    const observe = (backend: ModelBackend): ModelBackend => ({
      ...backend,
      prepare: async (input, params) => {
        const prepared = await backend.prepare(input, params);
        return {
          ...prepared,
          async *run(signal) {
            inFlight++;
            peak = Math.max(peak, inFlight);
            try {
              for await (const event of prepared.run(signal)) {
                await new Promise((r) => setTimeout(r, 2)); // a slower model makes overlap likely
                yield event;
              }
            } finally {
              inFlight--;
            }
          },
        };
      },
    });
    const gw = await gateway({ plans: { two: { max_concurrent_requests: 3 } }, key: { plan: 'two' }, wrapBackend: observe });
    const responses = await Promise.all(Array.from({ length: 50 }, () => chat(gw, { max_tokens: 8 }, SKIP)));
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(3);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    expect(peak).toBeLessThanOrEqual(3);
    // Every slot came back: a fresh burst of three gets in.
    const again = await Promise.all(Array.from({ length: 3 }, () => chat(gw, {}, SKIP)));
    expect(again.map((r) => r.status)).toEqual([200, 200, 200]);
  });
});

describe('budgets', () => {
  it('never overspends under 50 concurrent requests and reports each cost', async () => {
    // $1 per million tokens each way; a budget of $0.002 = 2000 micro-dollars.
    const priced = (backend: ModelBackend): ModelBackend => ({
      ...backend,
      price: { inputMicrosPerMillionTokens: 1_000_000, outputMicrosPerMillionTokens: 1_000_000 },
    });
    const gw = await gateway({ plans: { budget: { budget_usd_per_day: 2000 } }, key: { plan: 'budget' }, wrapBackend: priced });
    const responses = await Promise.all(Array.from({ length: 50 }, () => chat(gw, { max_tokens: 40 }, SKIP)));
    const ok = responses.filter((r) => r.status === 200);
    const refused = responses.filter((r) => r.status === 429);
    expect(refused.length).toBeGreaterThan(0);
    const costs = ok.map((r) => Math.round(Number(r.headers.get('x-aigw-cost-usd')) * 1e6));
    const spent = costs.reduce((a, b) => a + b, 0);
    expect(spent).toBeLessThanOrEqual(2000);
    for (const cost of costs) expect(cost).toBeGreaterThan(0);
    const error = ((await refused[0]!.json()) as { error: { code: string; type: string } }).error;
    expect(error).toMatchObject({ code: 'insufficient_quota', type: 'insufficient_quota' });
  });
});

describe('response cache', () => {
  it('misses, then hits; a changed parameter misses; streamed replay is valid SSE the openai client parses', async () => {
    const gw = await gateway({});
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: gw.apiKey, maxRetries: 0 });
    const request = { model: TEST_MODEL_ID, messages: [{ role: 'user' as const, content: 'cache me' }], max_tokens: 12, temperature: 0 };

    const first = await client.chat.completions.create(request).withResponse();
    expect(first.response.headers.get('x-aigw-cache')).toBe('MISS');
    const second = await client.chat.completions.create(request).withResponse();
    expect(second.response.headers.get('x-aigw-cache')).toBe('HIT');
    expect(second.data.choices[0]!.message.content).toBe(first.data.choices[0]!.message.content);
    expect(second.data.usage).toEqual(first.data.usage);
    expect(second.response.headers.get('x-aigw-cost-usd')).toBe('0.000000');

    // The streamed request is served from the non-streamed generation's entry, as a real SSE stream.
    const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } }).withResponse();
    expect(stream.response.headers.get('x-aigw-cache')).toBe('HIT');
    let text = '';
    let chunks = 0;
    for await (const chunk of stream.data) {
      chunks++;
      text += chunk.choices[0]?.delta.content ?? '';
    }
    expect(text).toBe(first.data.choices[0]!.message.content);
    expect(chunks).toBeGreaterThan(3);

    const changed = await client.chat.completions.create({ ...request, max_tokens: 11 }).withResponse();
    expect(changed.response.headers.get('x-aigw-cache')).toBe('MISS');
    const otherSeed = await client.chat.completions.create({ ...request, temperature: 0.5, seed: 1 }).withResponse();
    expect(otherSeed.response.headers.get('x-aigw-cache')).toBe('MISS');
  });

  it('serves a non-streamed request from a streamed generation, byte-for-byte valid SSE on replay', async () => {
    const gw = await gateway({});
    const body = { messages: [{ role: 'user', content: 'stream first' }], max_tokens: 10, temperature: 0, stream: true };
    const live = await chat(gw, body);
    expect(live.headers.get('x-aigw-cache')).toBe('MISS');
    const liveText = await live.text();
    const replayed = await chat(gw, body);
    expect(replayed.headers.get('x-aigw-cache')).toBe('HIT');
    const replayText = await replayed.text();
    expect(replayText).toMatch(/^(data: \{.*\}\n\n)+data: \[DONE\]\n\n$/s);
    // Same chunks apart from the completion id and creation time.
    const normalise = (sse: string) => sse.replace(/"id":"[^"]+"/g, '"id":"x"').replace(/"created":\d+/g, '"created":0');
    expect(normalise(replayText)).toBe(normalise(liveText));
    const whole = await chat(gw, { ...body, stream: false });
    expect(whole.headers.get('x-aigw-cache')).toBe('HIT');
  });

  it('does not cache sampled requests by default, and obeys the opt-in, skip and no-store headers', async () => {
    const gw = await gateway({});
    const body = { messages: [{ role: 'user', content: 'headers' }], temperature: 0.9 };
    expect((await chat(gw, body)).headers.get('x-aigw-cache')).toBe('BYPASS');
    expect((await chat(gw, body, { 'x-aigw-cache-ttl': '60' })).headers.get('x-aigw-cache')).toBe('MISS');
    expect((await chat(gw, body, { 'x-aigw-cache-ttl': '60' })).headers.get('x-aigw-cache')).toBe('HIT');

    const greedy = { messages: [{ role: 'user', content: 'headers 2' }], temperature: 0 };
    expect((await chat(gw, greedy, { 'x-aigw-skip-cache': 'true' })).headers.get('x-aigw-cache')).toBe('BYPASS');
    expect((await chat(gw, greedy, { 'cache-control': 'no-store' })).headers.get('x-aigw-cache')).toBe('BYPASS');
    // Neither of those stored anything: the first cacheable request misses.
    expect((await chat(gw, greedy)).headers.get('x-aigw-cache')).toBe('MISS');
    expect((await chat(gw, greedy, { 'cache-control': 'no-cache' })).headers.get('x-aigw-cache')).toBe('BYPASS');
    expect((await chat(gw, greedy)).headers.get('x-aigw-cache')).toBe('HIT');

    const bad = await chat(gw, greedy, { 'x-aigw-cache-ttl': 'soon' });
    expect(bad.status).toBe(400);
  });

  it('expires entries after their TTL', async () => {
    const gw = await gateway({});
    const body = { messages: [{ role: 'user', content: 'short-lived' }], temperature: 0 };
    // 3 s rather than 1 s: on a loaded 2-core machine the next request can take over a second to arrive.
    expect((await chat(gw, body, { 'x-aigw-cache-ttl': '3' })).headers.get('x-aigw-cache')).toBe('MISS');
    expect((await chat(gw, body)).headers.get('x-aigw-cache')).toBe('HIT');
    await new Promise((r) => setTimeout(r, 4100));
    expect((await chat(gw, body)).headers.get('x-aigw-cache')).toBe('MISS');
  });

  it('keeps entries per key unless shared, and a hit still counts toward requests per minute', async () => {
    const gw = await gateway({ plans: { few: { requests_per_minute: 3 } }, key: { plan: 'few' } });
    const otherKey = await gw.createKey({ plan: 'few' });
    const body = { messages: [{ role: 'user', content: 'per key' }], temperature: 0 };
    expect((await chat(gw, body)).headers.get('x-aigw-cache')).toBe('MISS');
    expect((await chat(gw, body, {}, otherKey)).headers.get('x-aigw-cache')).toBe('MISS');
    expect((await chat(gw, body)).headers.get('x-aigw-cache')).toBe('HIT');
    expect((await chat(gw, body)).headers.get('x-aigw-cache')).toBe('HIT');
    expect((await chat(gw, body)).status).toBe(429);

    const shared = await gateway({ cache: { ttlSeconds: 60, shared: true } });
    const sharedOther = await shared.createKey();
    expect((await chat(shared, body)).headers.get('x-aigw-cache')).toBe('MISS');
    expect((await chat(shared, body, {}, sharedOther)).headers.get('x-aigw-cache')).toBe('HIT');
  });
});

describe('CORS', () => {
  it('answers preflights for allowed origins and refuses other origins', async () => {
    const gw = await gateway({ allowedOrigins: ['https://app.example.com'] });
    const preflight = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization');

    const evilPreflight = await fetch(`${gw.url}/v1/chat/completions`, { method: 'OPTIONS', headers: { origin: 'https://evil.example' } });
    expect(evilPreflight.status).toBe(403);
    expect(evilPreflight.headers.get('access-control-allow-origin')).toBeNull();

    const allowed = await chat(gw, {}, { origin: 'https://app.example.com' });
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(allowed.headers.get('access-control-expose-headers')).toContain('x-request-id');

    const refused = await chat(gw, {}, { origin: 'https://evil.example' });
    expect(refused.status).toBe(403);
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('origin_not_allowed');

    // Requests without an Origin header are not browser requests.
    expect((await chat(gw)).status).toBe(200);
  });

  it('lets a key narrow the gateway-wide origins', async () => {
    const gw = await gateway({ allowedOrigins: ['*'], key: { allowedOrigins: ['https://one.example'] } });
    expect((await chat(gw, {}, { origin: 'https://one.example' })).status).toBe(200);
    expect((await chat(gw, {}, { origin: 'https://two.example' })).status).toBe(403);
    const open = await gw.createKey();
    expect((await chat(gw, {}, { origin: 'https://two.example' }, open)).status).toBe(200);
  });
});

describe('DynamoDB unreachable', () => {
  const dead = () => ({ client: createDynamoDbClient({ endpoint: 'http://127.0.0.1:1', region: 'us-east-1', maxAttempts: 1 }), tableName: 'aigw' });

  it('fails closed by default and open when configured, for admission (keys are never skipped)', async () => {
    const closed = await gateway({ admissionStore: dead() });
    const refused = await chat(closed, {}, SKIP);
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('admission_unavailable');

    const open = await gateway({ admissionStore: dead(), failOpen: true });
    const served = await chat(open, {}, SKIP);
    expect(served.status).toBe(200);
    expect(open.logs.some((l) => l.message === 'warning' && String(l.warning).includes('fail_open'))).toBe(true);
    // An unknown key is still refused: failing open never skips authentication.
    expect((await chat(open, {}, SKIP, 'aigw-0000000000000000000000000000000000000000')).status).toBe(401);
  });

  it('answers 503 quickly instead of hanging', async () => {
    const dead = { client: createDynamoDbClient({ endpoint: 'http://127.0.0.1:1', region: 'us-east-1', maxAttempts: 1 }), tableName: 'aigw' };
    const gw = await gateway({ store: dead });
    const res = await chat(gw);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('admission_unavailable');
  });
});
