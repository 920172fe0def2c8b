// Admission with fallback chains, on DynamoDB Local: a request reserves for the costliest path it
// may take, settles what its targets really cost, and per-target concurrency caps send the
// overflow to the next target. Flaky OpenAI-compatible servers on 127.0.0.1 are the targets.
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdmissionControl, authenticateApiKey, costMicros, createApiKey, formatUsd } from '../../src/admission/index.js';
import { serveNode } from '../../src/adapters/node-server.js';
import type { ModelBackend } from '../../src/backends/model-backend.js';
import { promptTokenBound, upstreamBackend } from '../../src/backends/upstream-backend.js';
import { ResponseCache } from '../../src/cache/index.js';
import { parseConfig } from '../../src/config/index.js';
import { createGateway } from '../../src/gateway.js';
import { CircuitBreakers, fallbackChain, routedModels } from '../../src/routing/index.js';
import { itemKeys, type Store } from '../../src/store/index.js';
import { startFlakyUpstream, type FlakyUpstream } from '../helpers/flaky-upstream.js';
import { createTestStore } from '../setup/store.js';

// Micro-dollars per million tokens: a costs 1 µ$ per prompt token and 2 per completion token, b 3 and 5.
const PRICE_A = { inputMicrosPerMillionTokens: 1_000_000, outputMicrosPerMillionTokens: 2_000_000 };
const PRICE_B = { inputMicrosPerMillionTokens: 3_000_000, outputMicrosPerMillionTokens: 5_000_000 };
const messages = [{ role: 'user' as const, content: 'Tell me a story.' }];

let store: Store;
let a: FlakyUpstream;
let b: FlakyUpstream;

beforeAll(async () => {
  store = await createTestStore('routing');
  [a, b] = await Promise.all([startFlakyUpstream({ label: 'a', tokenDelayMs: 40 }), startFlakyUpstream({ label: 'b' })]);
});

afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
});

const targets = () =>
  new Map<string, ModelBackend>([
    ['a', upstreamBackend({ id: 'a', version: 'a@1', baseUrl: a.baseUrl, price: PRICE_A, contextLength: 4096, continuesChat: true })],
    ['b', upstreamBackend({ id: 'b', version: 'b@1', baseUrl: b.baseUrl, price: PRICE_B, contextLength: 4096, continuesChat: true })],
  ]);

async function startGateway(modelCaps: Map<string, number>, cached = false) {
  const control = new AdmissionControl(store, { leaseSeconds: 60 });
  const models = routedModels(targets(), modelCaps, parseConfig('[routing.fallbacks]\na = ["b"]\n', {}).routing, control);
  const logs: Record<string, unknown>[] = [];
  const gateway = createGateway({
    backends: models.backends,
    defaultModel: 'a',
    authenticate: (presented) => authenticateApiKey(store, presented),
    logger: { info: (message, ...extra) => logs.push(Object.assign({ message }, ...extra)) },
    maxRequestBytes: 1024 * 1024,
    logPrompts: false,
    admission: { control, plans: { metered: { budget_usd_per_day: 10_000_000 } }, failOpen: false, modelCaps: models.modelCaps },
    cache: cached ? { cache: new ResponseCache(store, {}), config: { ttlSeconds: 3600, shared: true } } : undefined,
  });
  const server = await serveNode(gateway, { host: '127.0.0.1', port: 0 });
  const { key, record } = await createApiKey(store, { name: 'routing', plan: 'metered' });
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: key, maxRetries: 0 });
  return { client, keyId: record.keyId, logs: () => logs.filter((l) => l.message === 'request'), close: () => server.close(1000), models };
}

async function item(key: { pk: string; sk: string }): Promise<Record<string, unknown>> {
  return (await store.client.send(new GetCommand({ TableName: store.tableName, Key: key, ConsistentRead: true }))).Item ?? {};
}

describe('reservation', () => {
  it('reserves the costliest target when only one can generate, and every read plus the priciest writes when a reply can be continued', async () => {
    const input = { kind: 'chat' as const, messages };
    const prompt = promptTokenBound(input);
    const breakers = new CircuitBreakers({ failureThreshold: 1, cooldownMs: 1000 });
    const [ta, tb] = [...targets().values()];
    const chain = (second: ModelBackend) =>
      fallbackChain({ id: 'a', targets: [ta!, second].map((backend) => ({ backend, breaker: breakers.for(backend.version) })), firstTokenTimeoutMs: 1000, stallTimeoutMs: 1000 });

    const noContinuation = { ...tb!, continuesChat: false };
    const single = await chain(noContinuation).prepare(input, { maxTokens: 100 });
    expect(single.reserveMicros).toBe(costMicros(prompt, 100, PRICE_B));

    const continued = await chain(tb!).prepare(input, { maxTokens: 100 });
    // a may read the prompt and write k tokens, then b read prompt + k and write the rest.
    expect(continued.reserveMicros).toBe((prompt + 100) * 1 + (prompt + 100) * 3 + 100 * 5);
    expect(continued.reserveMicros).toBeGreaterThan(costMicros(prompt, 3, PRICE_A) + costMicros(prompt + 3, 97, PRICE_B));
  });
});

describe('settlement', () => {
  it('charges each target what it generated, at its own price, and frees the hold', async () => {
    const gw = await startGateway(new Map());
    try {
      a.next({ kind: 'cut', afterTokens: 3 });
      const stream = await gw.client.chat.completions.create({ model: 'a', messages, stream: true, stream_options: { include_usage: true } });
      let text = '';
      let usage: (OpenAI.CompletionUsage & { cost_usd?: string }) | undefined;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? '';
        if (chunk.usage) usage = chunk.usage;
      }
      expect(text).toBe('a0 a1 a2 b3 b4 b5 b6 b7 ');
      // a: its prompt (the gateway's bound; it never reported) and 3 tokens; b: what it reported
      // reading (the prompt's 4 words and the 3 tokens of the partial reply) and its 5 tokens.
      const expected = costMicros(promptTokenBound({ kind: 'chat', messages }), 3, PRICE_A) + costMicros(7, 5, PRICE_B);
      expect(usage!.cost_usd).toBe(formatUsd(expected));
      // Settlement follows the response; closing the server waits for it.
      await gw.close();
      const day = new Date().toISOString().slice(0, 10);
      const limits = await item(itemKeys.keyLimits(gw.keyId));
      expect(limits[`spent_d_${day}`]).toBe(expected);
      // The reservation is gone: what is counted against the budget is exactly what was spent.
      expect(limits[`usd_d_${day}`]).toBe(expected);
      expect(limits.conc).toBe(0);
      expect(Object.keys(limits).filter((k) => k.startsWith('h_'))).toEqual([]);
    } finally {
      await gw.close();
    }
  });
});

describe('per-target concurrency caps', () => {
  it('a target at its cap hands the request to the next target; admission does not count the chained model twice', async () => {
    const gw = await startGateway(new Map([['a', 1]]));
    expect(gw.models.modelCaps.has('a')).toBe(false);
    try {
      const first = await gw.client.chat.completions.create({ model: 'a', messages, stream: true });
      const iterator = first[Symbol.asyncIterator]();
      await iterator.next(); // the role chunk: a is now generating for this request
      await iterator.next();
      const second = await gw.client.chat.completions.create({ model: 'a', messages });
      expect(second.choices[0]!.message.content).toBe('b0 b1 b2 b3 b4 b5 b6 b7 ');
      let rest = '';
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) rest += next.value.choices[0]?.delta.content ?? '';
      expect(`a0 ${rest}`).toBe('a0 a1 a2 a3 a4 a5 a6 a7 ');
      const lines = gw.logs();
      expect(lines.find((l) => (l.fallbacks as string[]).includes('at_capacity'))).toMatchObject({ attempts: [{ target: 'a@1', outcome: 'at_capacity' }, { target: 'b@1', outcome: 'served' }] });
      // Both places are free again.
      expect((await item(itemKeys.modelLimits('a'))).conc).toBe(0);
      const third = await gw.client.chat.completions.create({ model: 'a', messages });
      expect(third.choices[0]!.message.content).toBe('a0 a1 a2 a3 a4 a5 a6 a7 ');
    } finally {
      await gw.close();
    }
  });
});

describe('cache', () => {
  it("stores an answer only when the primary wrote all of it: a fallback's answer is not the primary version's", async () => {
    const gw = await startGateway(new Map(), true);
    try {
      const ask = (content: string) =>
        gw.client.chat.completions.create({ model: 'a', messages: [{ role: 'user', content }], temperature: 0 }).withResponse();
      a.next({ kind: 'status', status: 500 });
      const fellBack = await ask('first question');
      expect(fellBack.data.choices[0]!.message.content).toBe('b0 b1 b2 b3 b4 b5 b6 b7 ');
      a.next({ kind: 'cut', afterTokens: 2 });
      expect((await ask('second question')).data.choices[0]!.message.content).toBe('a0 a1 b2 b3 b4 b5 b6 b7 ');
      expect((await ask('third question')).data.choices[0]!.message.content).toBe('a0 a1 a2 a3 a4 a5 a6 a7 ');
      // Asked again: only the primary's own answer comes from the cache; the others are generated afresh.
      expect((await ask('first question')).response.headers.get('x-aigw-cache')).toBe('MISS');
      expect((await ask('second question')).response.headers.get('x-aigw-cache')).toBe('MISS');
      const third = await ask('third question');
      expect(third.response.headers.get('x-aigw-cache')).toBe('HIT');
      expect(third.data.choices[0]!.message.content).toBe('a0 a1 a2 a3 a4 a5 a6 a7 ');
    } finally {
      await gw.close();
    }
  });
});
