// Fallback chains and circuit breakers through the real gateway on 127.0.0.1, driven by the
// official openai client, in front of flaky OpenAI-compatible servers (real HTTP) and the tiny
// model in onnxruntime. Server "a" writes "a0 a1 ...", server "b" continues from where a reply
// stopped, so the text says exactly which target wrote which token.
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { serveNode } from '../../src/adapters/node-server.js';
import { engineBackend } from '../../src/backends/engine-backend.js';
import type { ModelBackend } from '../../src/backends/model-backend.js';
import { promptTokenBound, upstreamBackend } from '../../src/backends/upstream-backend.js';
import { loadModel, type LoadedModel } from '../../src/engine/index.js';
import { createGateway } from '../../src/gateway.js';
import { CircuitBreakers, continuationInput, withRouting, type RouteTable } from '../../src/routing/index.js';
import { startFlakyUpstream, type FlakyUpstream } from '../helpers/flaky-upstream.js';
import { ensureTestModel } from '../helpers/test-models.js';

const FREE = { inputMicrosPerMillionTokens: 0, outputMicrosPerMillionTokens: 0 };
const messages = [{ role: 'user' as const, content: 'Tell me a story.' }];

let model: LoadedModel;
let a: FlakyUpstream;
let b: FlakyUpstream;
let c: FlakyUpstream;
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  model = await loadModel(await ensureTestModel({ layout: 'optimum', precision: 'int4' }), { threads: 1 });
  [a, b, c] = await Promise.all(['a', 'b', 'c'].map((label) => startFlakyUpstream({ label })));
});

afterAll(async () => {
  await Promise.all([a, b, c].map((s) => s?.close()));
});

afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  for (const server of [a, b, c]) server.reset();
});

const upstream = (id: string, server: { baseUrl: string }, more: Partial<Parameters<typeof upstreamBackend>[0]> = {}) =>
  upstreamBackend({ id, version: `${id}@1`, baseUrl: server.baseUrl, price: FREE, contextLength: 4096, ...more });

interface GatewaySetup {
  fallbacks: Record<string, string[]>;
  routes?: Record<string, RouteTable>;
  firstTokenTimeoutMs?: number;
  stallTimeoutMs?: number;
  breakers?: CircuitBreakers;
  extra?: ModelBackend[];
}

/** A gateway (keys off) serving a (continues), b (continues), c (can't continue) and the local engine. */
async function startGateway(setup: GatewaySetup) {
  const plain = new Map<string, ModelBackend>(
    [
      upstream('a', a, { continuesChat: true }),
      upstream('b', b, { continuesChat: true }),
      upstream('c', c),
      engineBackend(model, 'local', { batchSize: 4 }),
      ...(setup.extra ?? []),
    ].map((backend) => [backend.id, backend]),
  );
  const backends = withRouting(plain, {
    routes: new Map(Object.entries(setup.routes ?? {})),
    fallbacks: new Map(Object.entries(setup.fallbacks)),
    firstTokenTimeoutMs: setup.firstTokenTimeoutMs ?? 60_000,
    stallTimeoutMs: setup.stallTimeoutMs ?? 60_000,
    breakers: setup.breakers ?? new CircuitBreakers({ failureThreshold: 100, cooldownMs: 60_000 }),
  });
  const logs: Record<string, unknown>[] = [];
  const gateway = createGateway({
    backends,
    defaultModel: 'a',
    logger: { info: (message, ...extra) => logs.push(Object.assign({ message }, ...extra)) },
    maxRequestBytes: 1024 * 1024,
    logPrompts: false,
  });
  const server = await serveNode(gateway, { host: '127.0.0.1', port: 0 });
  closers.push(() => server.close(1000));
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'keys-are-off', maxRetries: 0 });
  const requestLines = () => logs.filter((l) => l.message === 'request');
  return { client, logs: requestLines };
}

async function streamText(client: OpenAI, body: { model: string; max_tokens?: number; temperature?: number; messages?: typeof messages }, headers: Record<string, string> = {}) {
  const { data: stream, response } = await client.chat.completions
    .create({ messages, ...body, stream: true, stream_options: { include_usage: true } }, { headers })
    .withResponse();
  let text = '';
  let usage: OpenAI.CompletionUsage | undefined;
  let finish: string | null | undefined;
  const models = new Set<string>();
  for await (const chunk of stream) {
    models.add(chunk.model);
    text += chunk.choices[0]?.delta.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
    if (chunk.usage) usage = chunk.usage;
  }
  return { text, usage, finish, models: [...models], versionHeader: response.headers.get('x-aigw-model-version') };
}

const fullReply = (label: string, from = 0, to = 8) => Array.from({ length: to - from }, (_, i) => `${label}${from + i} `).join('');

describe('before the first token', () => {
  it.each([
    { name: 'a connection reset', behavior: { kind: 'refuse' as const }, outcome: 'unreachable' },
    { name: 'a 500', behavior: { kind: 'status' as const, status: 500 }, outcome: 'server_error' },
    { name: 'a 502', behavior: { kind: 'status' as const, status: 502 }, outcome: 'server_error' },
    { name: "the upstream's 429", behavior: { kind: 'status' as const, status: 429, code: 'rate_limit_exceeded' }, outcome: 'unreachable' },
    { name: 'no response headers within the deadline', behavior: { kind: 'stall' as const }, outcome: 'timeout' },
    { name: 'headers but no first token within the deadline', behavior: { kind: 'stall_after' as const, afterTokens: 0 }, outcome: 'timeout' },
  ])('falls back on $name: the client sees one normal response from the next target', async ({ behavior, outcome }) => {
    const { client, logs } = await startGateway({ fallbacks: { a: ['b'] }, firstTokenTimeoutMs: 500 });
    a.always(behavior);
    const { text, usage, finish, models, versionHeader } = await streamText(client, { model: 'a' });
    expect(text).toBe(fullReply('b'));
    expect(finish).toBe('stop');
    // The response names the version that wrote it, not the one first tried.
    expect(models).toEqual(['b@1']);
    expect(versionHeader).toBe('b@1');
    expect(usage).toMatchObject({ completion_tokens: 8, prompt_tokens: 4 });
    expect(b.requests).toHaveLength(1);
    expect(b.requests[0]!.body.continue_final_message).toBeUndefined();
    expect(logs()[0]).toMatchObject({ status: 200, attempts: [{ target: 'a@1', outcome }, { target: 'b@1', outcome: 'served' }], fallbacks: [outcome] });
  });

  it('falls back when the upstream refuses connections (nothing listens on its port)', async () => {
    const gone = await startFlakyUpstream({ label: 'x' });
    await gone.close();
    const { client, logs } = await startGateway({ fallbacks: { dead: ['b'] }, extra: [upstream('dead', gone)] });
    const { data: answer, response } = await client.chat.completions.create({ model: 'dead', messages }).withResponse();
    expect(answer.choices[0]!.message.content).toBe(fullReply('b'));
    expect(answer.model).toBe('b@1');
    expect(response.headers.get('x-aigw-model-version')).toBe('b@1');
    expect(logs()[0]).toMatchObject({ fallbacks: ['unreachable'], modelVersion: 'b@1' });
  });

  it('falls back to a longer-context model when the local model finds the prompt too long, without running it', async () => {
    const { client, logs } = await startGateway({ fallbacks: { local: ['b'] } });
    const long = [{ role: 'user' as const, content: 'word '.repeat(model.manifest.contextLength) }];
    const answer = await client.chat.completions.create({ model: 'local', messages: long });
    expect(answer.choices[0]!.message.content).toBe(fullReply('b'));
    expect(logs()[0]).toMatchObject({ attempts: [{ outcome: 'context_length' }, { target: 'b@1', outcome: 'served' }] });
  });

  it("falls back when an upstream answers that the prompt exceeds its context", async () => {
    const { client, logs } = await startGateway({ fallbacks: { a: ['b'] } });
    a.always({ kind: 'status', status: 400, code: 'context_length_exceeded', message: "This model's maximum context length is 40 tokens" });
    const answer = await client.chat.completions.create({ model: 'a', messages });
    expect(answer.choices[0]!.message.content).toBe(fullReply('b'));
    expect(logs()[0]).toMatchObject({ attempts: [{ target: 'a@1', outcome: 'context_length' }, { target: 'b@1', outcome: 'served' }] });
  });

  it("does not fall back on the client's own error: a 400 the target explains reaches the client", async () => {
    const { client } = await startGateway({ fallbacks: { a: ['b'] } });
    a.always({ kind: 'status', status: 400, code: 'invalid_value', message: 'temperature is out of range' });
    const error = await client.chat.completions.create({ model: 'a', messages }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).message).toContain('temperature is out of range');
    expect(b.requests).toHaveLength(0);
  });

  it('answers 502/503 in OpenAI shape when every target fails', async () => {
    const { client } = await startGateway({ fallbacks: { a: ['b'] } });
    a.always({ kind: 'status', status: 500 });
    b.always({ kind: 'status', status: 503 });
    const error = await client.chat.completions.create({ model: 'a', messages }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBeGreaterThanOrEqual(502);
  });
});

describe('after the first token', () => {
  it("a stream cut after 3 tokens goes on at the fallback: text is a's prefix + b's continuation, usage covers both", async () => {
    const { client, logs } = await startGateway({ fallbacks: { a: ['b'] } });
    a.next({ kind: 'cut', afterTokens: 3 });
    const { text, usage, finish, models, versionHeader } = await streamText(client, { model: 'a' });
    expect(text).toBe('a0 a1 a2 b3 b4 b5 b6 b7 ');
    expect(finish).toBe('stop');
    // A continued reply is named by the version that began it (the log lists both).
    expect(models).toEqual(['a@1']);
    expect(versionHeader).toBe('a@1');
    // The primary never said its prompt count: it is the gateway's bound; the reply is 3 + 5 tokens.
    expect(usage).toMatchObject({ prompt_tokens: promptTokenBound({ kind: 'chat', messages }), completion_tokens: 8 });
    expect(usage!.total_tokens).toBe(usage!.prompt_tokens + 8);
    // b was asked to continue the partial reply, not to answer again.
    expect(b.requests[0]!.body).toMatchObject({
      continue_final_message: true,
      add_generation_prompt: false,
      messages: [...messages, { role: 'assistant', content: 'a0 a1 a2 ' }],
    });
    expect(logs()[0]).toMatchObject({ status: 200, completionTokens: 8, fallbacks: ['stream_cut'], attempts: [{ target: 'a@1', outcome: 'stream_cut', tokens: 3 }, { target: 'b@1', outcome: 'served', tokens: 5 }] });
  });

  it('keeps the max_tokens the client asked for across both targets', async () => {
    const { client } = await startGateway({ fallbacks: { a: ['b'] } });
    a.next({ kind: 'cut', afterTokens: 2 });
    const { text, usage, finish } = await streamText(client, { model: 'a', max_tokens: 5 });
    expect(text).toBe('a0 a1 b2 b3 b4 ');
    expect(finish).toBe('length');
    expect(usage!.completion_tokens).toBe(5);
    expect(b.requests[0]!.body.max_tokens).toBe(3);
  });

  it('a stream cut exactly at max_tokens ends there, without asking another target', async () => {
    const { client, logs } = await startGateway({ fallbacks: { a: ['b'] } });
    a.next({ kind: 'cut', afterTokens: 4 });
    const { text, usage, finish } = await streamText(client, { model: 'a', max_tokens: 4 });
    expect(text).toBe('a0 a1 a2 a3 ');
    expect(finish).toBe('length');
    expect(usage!.completion_tokens).toBe(4);
    expect(b.requests).toHaveLength(0);
    expect(logs()[0]).toMatchObject({ fallbacks: ['stream_cut'] });
  });

  it('a stream that stalls mid-way is continued after the stall deadline', async () => {
    const { client, logs } = await startGateway({ fallbacks: { a: ['b'] }, stallTimeoutMs: 400 });
    a.next({ kind: 'stall_after', afterTokens: 4 });
    const { text, usage } = await streamText(client, { model: 'a' });
    expect(text).toBe('a0 a1 a2 a3 b4 b5 b6 b7 ');
    expect(usage!.completion_tokens).toBe(8);
    expect(logs()[0]).toMatchObject({ fallbacks: ['stream_stalled'] });
  });

  it('a non-streamed answer cut mid-way comes back whole', async () => {
    const { client } = await startGateway({ fallbacks: { a: ['b'] } });
    a.next({ kind: 'cut', afterTokens: 5 });
    const answer = await client.chat.completions.create({ model: 'a', messages });
    expect(answer.choices[0]!.message.content).toBe('a0 a1 a2 a3 a4 b5 b6 b7 ');
    expect(answer.usage!.completion_tokens).toBe(8);
  });

  it('a text completion is continued by extending the prompt', async () => {
    const { client } = await startGateway({ fallbacks: { a: ['c'] } });
    a.next({ kind: 'cut', afterTokens: 3 });
    const answer = await client.completions.create({ model: 'a', prompt: 'Once upon a time' });
    expect(answer.choices[0]!.text).toBe('a0 a1 a2 c3 c4 c5 c6 c7 ');
    expect(c.requests[0]!.body.prompt).toBe('Once upon a timea0 a1 a2 ');
  });

  it("skips a target that can't continue a chat reply, and continues on the next that can", async () => {
    const { client, logs } = await startGateway({ fallbacks: { a: ['c', 'b'] } });
    a.next({ kind: 'cut', afterTokens: 3 });
    const { text } = await streamText(client, { model: 'a' });
    expect(text).toBe('a0 a1 a2 b3 b4 b5 b6 b7 ');
    expect(c.requests).toHaveLength(0);
    expect(logs()[0]).toMatchObject({ fallbacks: ['stream_cut', 'cannot_continue'] });
  });

  it('ends the stream with a clear error event when no target can continue', async () => {
    const { client, logs } = await startGateway({ fallbacks: { a: ['c'] } });
    a.next({ kind: 'cut', afterTokens: 3 });
    let text = '';
    const error = await (async () => {
      const stream = await client.chat.completions.create({ model: 'a', messages, stream: true });
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    })().catch((e: unknown) => e);
    expect(text).toBe('a0 a1 a2 ');
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(String((error as Error).message)).toMatch(/broke off after 3 tokens and no fallback target could continue it/);
    expect(c.requests).toHaveLength(0);
    expect(logs()[0]).toMatchObject({ status: 502, fallbacks: ['stream_cut', 'cannot_continue'] });
  });

  it('the local engine continues a reply cut upstream exactly as it would continue that partial reply itself', async () => {
    const { client, logs } = await startGateway({ fallbacks: { a: ['local'] } });
    a.next({ kind: 'cut', afterTokens: 3 });
    const { text, usage } = await streamText(client, { model: 'a', max_tokens: 12, temperature: 0, messages });
    expect(text.startsWith('a0 a1 a2 ')).toBe(true);

    // The engine asked directly to continue "a0 a1 a2 " (greedy, the 9 tokens left).
    const local = engineBackend(model, 'local');
    const prepared = await local.prepare(continuationInput({ kind: 'chat', messages }, 'a0 a1 a2 '), { maxTokens: 9, temperature: 0 });
    let expected = '';
    let completionTokens = 0;
    for await (const event of prepared.run(new AbortController().signal)) {
      expected += event.text;
      if (event.type === 'finish') completionTokens = event.usage.completionTokens;
    }
    expect(text).toBe(`a0 a1 a2 ${expected}`);
    expect(usage!.completion_tokens).toBe(3 + completionTokens);
    expect(logs()[0]).toMatchObject({ attempts: [{ outcome: 'stream_cut' }, { target: local.version, outcome: 'served' }] });
  });
});

describe('circuit breaker', () => {
  it('a dead upstream costs one timeout, is skipped while open, probed once half-open, and closes on success', async () => {
    const clock = { now: 0 };
    const breakers = new CircuitBreakers({ failureThreshold: 1, cooldownMs: 30_000, now: () => clock.now });
    const { client, logs } = await startGateway({ fallbacks: { a: ['b'] }, firstTokenTimeoutMs: 400, breakers });
    a.always({ kind: 'stall' });
    for (let i = 0; i < 4; i++) {
      const answer = await client.chat.completions.create({ model: 'a', messages });
      expect(answer.choices[0]!.message.content).toBe(fullReply('b'));
    }
    // One request waited for the deadline; the other three skipped a at once.
    expect(a.requests).toHaveLength(1);
    expect(logs().map((l) => l.fallbacks)).toEqual([['timeout'], ['breaker_open'], ['breaker_open'], ['breaker_open']]);
    expect(breakers.for('a@1').state).toBe('open');

    clock.now = 30_000;
    expect(breakers.for('a@1').state).toBe('half-open');
    a.always({ kind: 'status', status: 500 });
    await client.chat.completions.create({ model: 'a', messages });
    expect(a.requests).toHaveLength(2);
    // The failed probe reopened it for a whole cooldown.
    expect(breakers.for('a@1').state).toBe('open');
    await client.chat.completions.create({ model: 'a', messages });
    expect(a.requests).toHaveLength(2);

    clock.now = 60_000;
    a.always({ kind: 'ok' });
    const probed = await client.chat.completions.create({ model: 'a', messages });
    expect(probed.choices[0]!.message.content).toBe(fullReply('a'));
    expect(breakers.for('a@1').state).toBe('closed');
    const after = await client.chat.completions.create({ model: 'a', messages });
    expect(after.choices[0]!.message.content).toBe(fullReply('a'));
    expect(a.requests).toHaveLength(4);
  });

  it('with every target open, answers 503 model_unavailable at once', async () => {
    const clock = { now: 0 };
    const breakers = new CircuitBreakers({ failureThreshold: 1, cooldownMs: 30_000, now: () => clock.now });
    const { client } = await startGateway({ fallbacks: { a: ['b'] }, breakers });
    a.always({ kind: 'status', status: 500 });
    b.always({ kind: 'status', status: 500 });
    await client.chat.completions.create({ model: 'a', messages }).catch(() => undefined);
    const error = await client.chat.completions.create({ model: 'a', messages }).catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 503, code: 'model_unavailable' });
    expect(a.requests).toHaveLength(1);
    expect(b.requests).toHaveLength(1);
  });
});

describe('route rules', () => {
  const routes: Record<string, RouteTable> = {
    assistant: {
      defaultTarget: 'a',
      rules: [
        { name: 'long', target: 'b', when: { kind: 'prompt_tokens', over: 100 } },
        { name: 'big answers', target: 'b', when: { kind: 'max_tokens', over: 100 } },
        { name: 'legal', target: 'b', when: { kind: 'words', pattern: /\bcontract\b/iu } },
        { name: 'asked', target: 'c', when: { kind: 'header', value: 'heavy' } },
      ],
    },
  };

  it('sends each request where its rule says, logs the decision, and falls back within the chosen target', async () => {
    const { client, logs } = await startGateway({ routes, fallbacks: { c: ['b'] } });
    const served = async (body: { messages?: typeof messages; max_tokens?: number }, headers: Record<string, string> = {}): Promise<string> => {
      const answer = await client.chat.completions.create({ model: 'assistant', messages, ...body }, { headers });
      const text = answer.choices[0]!.message.content!;
      // The model field names the version that wrote the answer.
      expect(answer.model).toBe(`${text[0]}@1`);
      return text.slice(0, 2);
    };
    expect(await served({})).toBe('a0');
    expect(await served({ messages: [{ role: 'user', content: 'word '.repeat(40) }] })).toBe('b0');
    expect(await served({ max_tokens: 101 })).toBe('b0');
    expect(await served({ messages: [{ role: 'user', content: 'Read this Contract.' }] })).toBe('b0');
    expect(await served({}, { 'x-aigw-route': 'heavy' })).toBe('c0');
    c.always({ kind: 'status', status: 503 });
    // The route picked c; its fallback b wrote the answer, and the response names b.
    expect(await served({}, { 'x-aigw-route': 'heavy' })).toBe('b0');
    expect(logs().map((l) => [l.route, l.routeReason, l.routeTarget])).toEqual([
      ['default', 'default', 'a'],
      ['long', 'prompt_tokens', 'b'],
      ['big answers', 'max_tokens', 'b'],
      ['legal', 'words', 'b'],
      ['asked', 'header', 'c'],
      ['asked', 'header', 'c'],
    ]);
    expect(logs()[5]).toMatchObject({ fallbacks: ['server_error'], model: 'assistant' });
  });
});
