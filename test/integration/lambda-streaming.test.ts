// The Lambda streaming adapter under the runtime shim: function-URL fixtures in, the exact bytes
// the runtime would forward out. The gateway is the real one (DynamoDB Local, onnxruntime).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { functionUrlEvent, invokeStreaming, PRELUDE_CONTENT_TYPE } from '../helpers/awslambda-shim.js';
import { streamingHandler, toRequest, type StreamingLambdaHandler } from '../../src/adapters/lambda-streaming.js';
import { AdmissionControl, authenticateApiKey, createApiKey } from '../../src/admission/index.js';
import { engineBackend } from '../../src/backends/engine-backend.js';
import type { ModelBackend } from '../../src/backends/model-backend.js';
import { ResponseCache } from '../../src/cache/index.js';
import { DEFAULT_PLANS } from '../../src/config/index.js';
import { loadModel } from '../../src/engine/index.js';
import { createGateway, type Gateway } from '../../src/gateway.js';
import { createTestStore } from '../setup/store.js';
import { ensureTestModel } from '../helpers/test-models.js';

const MODEL_ID = 'aigw-demo';
let modelVersion: string;

interface ObservedRun {
  signal: AbortSignal;
  events: number;
  ended: Promise<void>;
}

let handler: StreamingLambdaHandler;
let apiKey: string;
const logs: Record<string, unknown>[] = [];
const runs: ObservedRun[] = [];

/** Records each generation's signal and how many events it produced before it stopped. */
function observed(backend: ModelBackend): ModelBackend {
  return {
    ...backend,
    prepare: async (input, params) => {
      const prepared = await backend.prepare(input, params);
      return {
        ...prepared,
        run(signal) {
          let finish!: () => void;
          const run: ObservedRun = { signal, events: 0, ended: new Promise<void>((resolve) => (finish = resolve)) };
          runs.push(run);
          return (async function* () {
            try {
              for await (const event of prepared.run(signal)) {
                run.events++;
                yield event;
              }
            } finally {
              finish();
            }
          })();
        },
      };
    },
  };
}

beforeAll(async () => {
  const store = await createTestStore('lambda-streaming');
  apiKey = (await createApiKey(store, { name: 'lambda' })).key;
  const model = await loadModel(await ensureTestModel({ layout: 'optimum', precision: 'int4' }), { threads: 1 });
  modelVersion = model.manifest.version;
  const gateway = createGateway({
    backends: new Map([[MODEL_ID, observed(engineBackend(model, MODEL_ID))]]),
    defaultModel: MODEL_ID,
    authenticate: (presented) => authenticateApiKey(store, presented),
    logger: { info: (message, ...extra) => logs.push(Object.assign({ message }, ...extra)) },
    maxRequestBytes: 1024 * 1024,
    logPrompts: false,
    admission: { control: new AdmissionControl(store, { leaseSeconds: 60 }), plans: DEFAULT_PLANS, failOpen: false, modelCaps: new Map() },
    cache: { cache: new ResponseCache(store, {}), config: { ttlSeconds: 3600, shared: false } },
    allowedOrigins: ['https://app.example.com'],
  });
  handler = streamingHandler(gateway);
});

afterAll(() => {
  // Prompts and completions never reach the log, in Lambda as anywhere else.
  const text = JSON.stringify(logs);
  expect(text).not.toContain('Say hello.');
  expect(text).not.toContain('Count to ten.');
});

const textOf = (bytes: Buffer) => bytes.toString('utf8');

describe('a chat completion through the streaming handler', () => {
  it('answers 200 JSON for a base64 body, with the gateway headers in the prelude', async () => {
    const result = await invokeStreaming(handler, functionUrlEvent('chat-completion', { API_KEY: apiKey }));
    expect(result.error).toBeUndefined();
    expect(result.contentType).toBe(PRELUDE_CONTENT_TYPE);
    expect(result.prelude?.statusCode).toBe(200);
    expect(result.prelude?.headers['content-type']).toMatch(/^application\/json/);
    expect(result.prelude?.headers['x-request-id']).toMatch(/^req_[0-9a-f]{24}$/);
    expect(result.prelude?.headers['x-aigw-cache']).toBe('MISS');
    expect(result.prelude?.headers['x-ratelimit-limit-requests']).toBe('600');
    expect(result.prelude?.cookies).toBeUndefined();
    const body = JSON.parse(textOf(result.body));
    // `model` names the exact version that served, as the x-aigw-model-version header does.
    expect(body).toMatchObject({ object: 'chat.completion', model: `${MODEL_ID}@${modelVersion}`, choices: [{ index: 0, message: { role: 'assistant' } }] });
    expect(result.prelude?.headers['x-aigw-model-version']).toBe(`${MODEL_ID}@${modelVersion}`);
    expect(body.usage.completion_tokens).toBeGreaterThan(0);
    expect(body.usage.completion_tokens).toBeLessThanOrEqual(8);
  });

  it('streams SSE one event per write, token by token, ending with data: [DONE]', async () => {
    const result = await invokeStreaming(handler, functionUrlEvent('chat-completion-stream', { API_KEY: apiKey }));
    expect(result.error).toBeUndefined();
    expect(result.prelude?.statusCode).toBe(200);
    expect(result.prelude?.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(result.prelude?.headers['x-request-id']).toMatch(/^req_/);

    const text = textOf(result.body);
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
    const events = text.split('\n\n').filter((e) => e !== '');
    // Every event went out in a write of its own: nothing was buffered and sent in one piece.
    expect(result.bodyWrites.map(textOf)).toEqual(events.map((e) => `${e}\n\n`));
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice('data: '.length)));
    const tokens = chunks.filter((c) => c.choices[0]?.delta?.content);
    expect(tokens.length).toBeGreaterThan(1);
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    expect(chunks.at(-1).choices[0].finish_reason).not.toBeNull();
  });

  it('the body bytes are exactly the prelude JSON, 8 NUL bytes, then the body', async () => {
    const result = await invokeStreaming(handler, functionUrlEvent('chat-completion', { API_KEY: apiKey }));
    const prelude = Buffer.from(JSON.stringify(result.prelude));
    expect(result.bytes.equals(Buffer.concat([prelude, Buffer.alloc(8), result.body]))).toBe(true);
  });
});

describe('non-200 answers keep their status, headers and body in streaming mode', () => {
  it('401 without a key', async () => {
    const result = await invokeStreaming(handler, functionUrlEvent('chat-completion-no-key'));
    expect(result.error).toBeUndefined();
    expect(result.prelude?.statusCode).toBe(401);
    expect(result.prelude?.headers['content-type']).toBe('application/json');
    expect(result.prelude?.headers['x-request-id']).toMatch(/^req_/);
    expect(JSON.parse(textOf(result.body))).toEqual({
      error: { message: expect.stringContaining("You didn't provide an API key"), type: 'invalid_request_error', param: null, code: null },
    });
  });

  it('404 for an unknown route', async () => {
    const result = await invokeStreaming(handler, functionUrlEvent('unknown-route', { API_KEY: apiKey }));
    expect(result.prelude?.statusCode).toBe(404);
    expect(result.prelude?.headers['x-request-id']).toMatch(/^req_/);
    expect(JSON.parse(textOf(result.body)).error.message).toBe('Invalid URL (/v1/engines)');
  });

  it('204 with an empty body (a CORS preflight) still sends its prelude', async () => {
    const result = await invokeStreaming(handler, functionUrlEvent('cors-preflight'));
    expect(result.error).toBeUndefined();
    expect(result.prelude?.statusCode).toBe(204);
    expect(result.prelude?.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(result.body.length).toBe(0);
  });
});

describe('a client that disconnects mid-stream', () => {
  it('aborts the request signal and stops generation', async () => {
    const before = runs.length;
    const result = await invokeStreaming(handler, functionUrlEvent('chat-completion-stream-long', { API_KEY: apiKey }), {
      // Gone after the assistant role and the first token: generation is under way.
      onBodyWrite: (_chunk, index, stream) => {
        if (index === 1) stream.disconnect();
      },
    });
    expect(result.error).toBeInstanceOf(Error);
    expect(result.bodyWrites.length).toBe(2);
    const run = runs[before]!;
    await run.ended;
    expect(run.signal.aborted).toBe(true);
    // Generation stopped within a step or two of the disconnect (max_tokens is 200).
    expect(run.events).toBeLessThanOrEqual(result.bodyWrites.length + 2);
    // The handler returned only after the gateway's clean-up: the request is logged as closed.
    const requestId = result.prelude?.headers['x-request-id'];
    expect(logs.find((line) => line.requestId === requestId && line.message === 'request')).toMatchObject({ status: 499 });
  });
});

describe('the event → Request translation', () => {
  const echo: Gateway = async (request) => {
    const url = new URL(request.url);
    const headers = new Headers({ 'content-type': 'application/json', 'x-echo': 'yes' });
    headers.append('set-cookie', 'session=rotated; Path=/; HttpOnly; Secure');
    headers.append('set-cookie', 'seen=1; Max-Age=60');
    return new Response(
      JSON.stringify({
        method: request.method,
        url: request.url,
        query: [...url.searchParams.entries()],
        cookie: request.headers.get('cookie'),
        forwardedFor: request.headers.get('x-forwarded-for'),
        acceptLanguage: request.headers.get('accept-language'),
        body: await request.text(),
      }),
      { status: 201, headers },
    );
  };

  it('keeps the path, query string, cookies, joined headers and a plain-text body; set-cookie goes to cookies', async () => {
    const result = await invokeStreaming(streamingHandler(echo), functionUrlEvent('cookies-and-query'));
    expect(result.error).toBeUndefined();
    expect(result.prelude?.statusCode).toBe(201);
    expect(result.prelude?.headers['x-echo']).toBe('yes');
    expect(result.prelude?.headers['set-cookie']).toBeUndefined();
    expect(result.prelude?.cookies).toEqual(['session=rotated; Path=/; HttpOnly; Secure', 'seen=1; Max-Age=60']);
    expect(JSON.parse(textOf(result.body))).toEqual({
      method: 'POST',
      url: 'https://f3xmple2abcdefghijklmnopqr.lambda-url.us-east-1.on.aws/echo/path?a=1&a=2&b=x%20y',
      query: [
        ['a', '1'],
        ['a', '2'],
        ['b', 'x y'],
      ],
      cookie: 'session=abc123; theme=dark',
      forwardedFor: '198.51.100.4, 203.0.113.17',
      acceptLanguage: 'en-GB,en;q=0.8',
      body: 'plain text body: ok',
    });
  });

  it('returns only after the work the gateway handed to waitUntil has finished', async () => {
    let done = false;
    const later: Gateway = async (_request, runtime) => {
      runtime?.waitUntil(new Promise<void>((resolve) => setTimeout(resolve, 20)).then(() => void (done = true)));
      return new Response('ok');
    };
    const result = await invokeStreaming(streamingHandler(later), functionUrlEvent('cors-preflight'));
    expect(result.prelude?.statusCode).toBe(200);
    expect(textOf(result.body)).toBe('ok');
    expect(done).toBe(true);
  });

  it('decodes a base64 body to the exact bytes and builds the URL from the domain name, never the Host header', async () => {
    const event = functionUrlEvent('chat-completion', { API_KEY: 'k' });
    event.headers.host = 'a b';
    const request = toRequest(event) as Request;
    expect(request.url).toBe('https://f3xmple2abcdefghijklmnopqr.lambda-url.us-east-1.on.aws/v1/chat/completions');
    expect(await request.text()).toBe(Buffer.from(event.body!, 'base64').toString('utf8'));
    expect(request.headers.get('authorization')).toBe('Bearer k');
  });
});
