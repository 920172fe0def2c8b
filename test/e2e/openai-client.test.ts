// The real local gateway driven by the official `openai` npm client (and raw HTTP where the
// client hides the wire): chat, streaming with usage, completions, models, and each error.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, TEST_MODEL_ID, type TestGateway } from '../helpers/test-gateway.js';

let gw: TestGateway;
let client: OpenAI;

beforeAll(async () => {
  gw = await startTestGateway({ maxRequestBytes: 64 * 1024 });
  client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: gw.apiKey, maxRetries: 0 });
});

afterAll(async () => {
  await gw?.close();
});

const NO_CACHE = { 'x-aigw-skip-cache': 'true' };

const messages = [
  { role: 'system' as const, content: 'You are terse.' },
  { role: 'user' as const, content: 'Say something about the sea.' },
];

describe('chat completions', () => {
  it('answers with a chat.completion carrying usage and a request id', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: TEST_MODEL_ID, messages, max_tokens: 12, temperature: 0 })
      .withResponse();
    expect(response.status).toBe(200);
    expect(response.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{24}$/);
    expect(data.object).toBe('chat.completion');
    // Like OpenAI's dated snapshots, `model` names the exact version that served.
    expect(data.model).toBe(`${TEST_MODEL_ID}@1`);
    expect(data.id).toMatch(/^chatcmpl-/);
    expect(data.choices).toHaveLength(1);
    expect(data.choices[0]!.message.role).toBe('assistant');
    expect(typeof data.choices[0]!.message.content).toBe('string');
    expect(['stop', 'length']).toContain(data.choices[0]!.finish_reason);
    expect(data.usage!.prompt_tokens).toBeGreaterThan(10);
    expect(data.usage!.completion_tokens).toBeGreaterThan(0);
    expect(data.usage!.completion_tokens).toBeLessThanOrEqual(12);
    expect(data.usage!.total_tokens).toBe(data.usage!.prompt_tokens + data.usage!.completion_tokens);
  });

  it('streams chunks exactly as OpenAI orders them, with usage last, matching the non-streamed answer', async () => {
    const request = { model: TEST_MODEL_ID, messages, max_tokens: 20, temperature: 0 };
    // Both generated live (a cache hit would replay the first answer; the cache has its own tests).
    const whole = await client.chat.completions.create(request, { headers: NO_CACHE });
    const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } }, { headers: NO_CACHE });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);

    expect(chunks[0]!.choices[0]!.delta).toEqual({ role: 'assistant', content: '' });
    const usageChunk = chunks.at(-1)!;
    expect(usageChunk.choices).toEqual([]);
    // aigw adds the request's cost to the usage chunk (the demo model is free).
    expect(usageChunk.usage).toEqual({ ...whole.usage, cost_usd: '0.000000' });
    const finishChunk = chunks.at(-2)!;
    expect(finishChunk.choices[0]!.finish_reason).toBe(whole.choices[0]!.finish_reason);
    for (const chunk of chunks.slice(0, -2)) {
      expect(chunk.object).toBe('chat.completion.chunk');
      expect(chunk.id).toBe(usageChunk.id);
      expect(chunk.choices[0]!.finish_reason).toBeNull();
      expect(chunk.usage).toBeNull();
    }
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe(whole.choices[0]!.message.content);
  });

  it('repeats a seeded sampled answer', async () => {
    const request = { model: TEST_MODEL_ID, messages, max_tokens: 16, temperature: 0.9, seed: 42 };
    const a = await client.chat.completions.create(request, { headers: NO_CACHE });
    const b = await client.chat.completions.create(request, { headers: NO_CACHE });
    expect(b.choices[0]!.message.content).toBe(a.choices[0]!.message.content);
  });

  it('accepts text-part content and ignores unknown fields', async () => {
    const res = await client.chat.completions.create({
      model: TEST_MODEL_ID,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Hello' }] }],
      max_completion_tokens: 3,
      // @ts-expect-error: a field OpenAI does not know either
      some_future_field: { nested: true },
    });
    expect(res.usage!.completion_tokens).toBeLessThanOrEqual(3);
  });
});

describe('completions, generate and models', () => {
  it('completes a prompt, streamed and not', async () => {
    const whole = await client.completions.create({ model: TEST_MODEL_ID, prompt: 'Once upon a time', max_tokens: 8, temperature: 0 }, { headers: NO_CACHE });
    expect(whole.object).toBe('text_completion');
    expect(whole.usage!.completion_tokens).toBeLessThanOrEqual(8);
    const stream = await client.completions.create(
      { model: TEST_MODEL_ID, prompt: 'Once upon a time', max_tokens: 8, temperature: 0, stream: true },
      { headers: NO_CACHE },
    );
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
    expect(text).toBe(whole.choices[0]!.text);
  });

  it('serves the simple /v1/generate form', async () => {
    const res = await fetch(`${gw.url}/v1/generate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ system: 'Be brief.', user: 'Hi', parameters: { temperature: 0, max_tokens: 5 } }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body).toMatchObject({ object: 'generation', model: `${TEST_MODEL_ID}@1`, text: expect.any(String) });
    expect(body.usage.completion_tokens).toBeLessThanOrEqual(5);
  });

  it('lists and retrieves models', async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual([TEST_MODEL_ID]);
    const model = await client.models.retrieve(TEST_MODEL_ID);
    expect(model).toMatchObject({ id: TEST_MODEL_ID, object: 'model', owned_by: 'aigw' });
    await expect(client.models.retrieve('nope')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('answers the health check without a key', async () => {
    const res = await fetch(`${gw.url}/healthz`);
    expect(res.status).toBe(200);
    expect((await res.json()) as any).toEqual({ status: 'ok' });
  });
});

describe('errors in OpenAI shape', () => {
  it('404 model_not_found for an unknown model', async () => {
    const error = await client.chat.completions.create({ model: 'gpt-nope', messages }).catch((e) => e);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect(error.status).toBe(404);
    expect(error.code).toBe('model_not_found');
  });

  it('401 invalid_api_key for a wrong or missing key', async () => {
    const wrong = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'aigw-wrongwrongwrongwrongwrongwrongwrong', maxRetries: 0 });
    const error = await wrong.chat.completions.create({ model: TEST_MODEL_ID, messages }).catch((e) => e);
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(error.code).toBe('invalid_api_key');
    expect(JSON.stringify(error.error)).not.toContain('wrongwrong');

    const res = await fetch(`${gw.url}/v1/models`);
    expect(res.status).toBe(401);
    expect(((await res.json()) as any).error).toMatchObject({ type: 'invalid_request_error' });
  });

  it('accepts the key in x-api-key too', async () => {
    const res = await fetch(`${gw.url}/v1/models`, { headers: { 'x-api-key': gw.apiKey } });
    expect(res.status).toBe(200);
  });

  it('400 for wrong types, out-of-range values and n > 1, naming the parameter', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ temperature: 'hot' }, 'temperature'],
      [{ temperature: 3 }, 'temperature'],
      [{ top_p: 1.5 }, 'top_p'],
      [{ max_tokens: 0 }, 'max_tokens'],
      [{ n: 2 }, 'n'],
      [{ stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
      [{ messages: [] }, 'messages'],
    ];
    for (const [override, param] of cases) {
      const error = await client.chat.completions.create({ model: TEST_MODEL_ID, messages, ...override } as never).catch((e) => e);
      expect(error, JSON.stringify(override)).toBeInstanceOf(OpenAI.BadRequestError);
      expect(error.param).toBe(param);
      expect(error.type).toBe('invalid_request_error');
    }
  });

  it('400 context_length_exceeded for a prompt over the context', async () => {
    const long = 'lorem ipsum dolor sit amet '.repeat(1200);
    const error = await client.chat.completions.create({ model: TEST_MODEL_ID, messages: [{ role: 'user', content: long }] }).catch((e) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error.code).toBe('context_length_exceeded');
  });

  it('413 for a body over the size limit and 415 for a wrong content type', async () => {
    const huge = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: TEST_MODEL_ID, messages: [{ role: 'user', content: 'x'.repeat(100 * 1024) }] }),
    });
    expect(huge.status).toBe(413);
    expect(((await huge.json()) as any).error.message).toMatch(/65536/);

    const form = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.apiKey}`, 'content-type': 'text/plain' },
      body: 'hello',
    });
    expect(form.status).toBe(415);
    expect(((await form.json()) as any).error).toHaveProperty('message');
  });

  it('400 for malformed JSON', async () => {
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.apiKey}`, 'content-type': 'application/json' },
      body: '{"model": "aigw-demo", "messages": [',
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error).toMatchObject({ type: 'invalid_request_error', code: null });
  });

  it('404 in OpenAI shape for an unknown route', async () => {
    const res = await fetch(`${gw.url}/v1/embeddings`, { method: 'POST', headers: { authorization: `Bearer ${gw.apiKey}` } });
    expect(res.status).toBe(404);
    expect(((await res.json()) as any).error.message).toMatch(/embeddings/);
  });
});

describe('the wire', () => {
  it('frames SSE as data lines ending with [DONE]', async () => {
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: TEST_MODEL_ID, messages, max_tokens: 5, stream: true }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(res.headers.get('x-request-id')).toMatch(/^req_/);
    const body = await res.text();
    expect(body).toMatch(/^(data: \{.*\}\n\n)+data: \[DONE\]\n\n$/s);
    for (const line of body.split('\n\n').filter((l) => l && l !== 'data: [DONE]')) {
      expect(() => JSON.parse(line.slice('data: '.length))).not.toThrow();
    }
  });

  it('stops generating when the client disconnects mid-stream', async () => {
    const controller = new AbortController();
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: TEST_MODEL_ID, messages, max_tokens: 1500, stream: true, temperature: 1, seed: 3 }),
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    const requestId = res.headers.get('x-request-id');
    controller.abort();
    // The request's log line is written when the stream ends; wait for it.
    let line: Record<string, unknown> | undefined;
    while (!(line = gw.logs.find((l) => l.requestId === requestId))) await new Promise((r) => setTimeout(r, 20));
    expect(line.status).toBe(499);
    // Generation stopped soon after the client left, far from the 1500 tokens it asked for.
    expect(line.completionTokens).toEqual(expect.any(Number));
    expect(line.completionTokens).toBeLessThan(100);
  });

  it('logs one line per request with ids, tokens and timings, never the prompt', async () => {
    const { response } = await client.chat.completions
      .create({ model: TEST_MODEL_ID, messages: [{ role: 'user', content: 'secret-prompt-text' }], max_tokens: 4 })
      .withResponse();
    const requestId = response.headers.get('x-request-id');
    const lines = gw.logs.filter((l) => l.requestId === requestId);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      status: 200,
      model: TEST_MODEL_ID,
      keyId: expect.stringMatching(/^key_/),
      promptTokens: expect.any(Number),
      completionTokens: expect.any(Number),
      latencyMs: expect.any(Number),
      ttftMs: expect.any(Number),
    });
    expect(JSON.stringify(gw.logs)).not.toContain('secret-prompt-text');
  });
});
