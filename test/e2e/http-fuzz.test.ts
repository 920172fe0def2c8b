// HTTP-level fuzz (fast-check, fixed seed) over methods, targets, headers, framing and bodies for
// every route, as raw bytes over TCP to the real gateway (Node adapter, DynamoDB Local, the demo
// ONNX model). Every request gets a response, never a 5xx; every 4xx is in OpenAI's error shape;
// the server is healthy afterwards. AIGW_FUZZ_RUNS sets the case count (`npm run fuzz`).
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isOpenAiError, rawExchange } from '../helpers/raw-http.js';
import { startTestGateway, TEST_MODEL_ID, type TestGateway } from '../helpers/test-gateway.js';

const RUNS = Number(process.env.AIGW_FUZZ_RUNS ?? 2_000);
const SEED = Number(process.env.AIGW_FUZZ_SEED ?? 20261201);

let gw: TestGateway;
let port: number;

beforeAll(async () => {
  // Small bodies keep each case quick; the limit itself is one of the things fuzzed.
  gw = await startTestGateway({
    cache: false,
    maxRequestBytes: 64 * 1024,
    plans: { fuzz: { requests_per_minute: 1_000_000 } },
    key: { plan: 'fuzz' },
    // Valid requests do run the model; two tokens each keeps thousands of cases quick.
    wrapBackend: (backend) => ({ ...backend, prepare: (input, params) => backend.prepare(input, { ...params, maxTokens: Math.min(params.maxTokens ?? 2, 2) }) }),
  });
  port = Number(new URL(gw.url).port);
});

afterAll(async () => {
  await gw?.close();
});

const ROUTES = ['/v1/chat/completions', '/v1/completions', '/v1/generate', '/v1/models', `/v1/models/${TEST_MODEL_ID}`, '/healthz', '/', '/v1/'];

const target = fc.oneof(
  fc.constantFrom(...ROUTES),
  fc.constantFrom('*', '/v1/models/%ZZ', '/v1/models/%', '/%00', '//healthz', 'http://x/healthz', 'example.com:80', '/v1/chat/completions?x=%ZZ', '/v1/models/a%2Fb'),
  fc.tuple(fc.constantFrom(...ROUTES), fc.string({ maxLength: 12 })).map(([route, tail]) => route + encodeURI(tail).replace(/#/g, '%23')),
);

const method = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('GET', 'POST') },
  { weight: 2, arbitrary: fc.constantFrom('PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'CONNECT') },
  { weight: 1, arbitrary: fc.constantFrom('get', 'BREW', 'POST ', 'M-SEARCH') },
);

const jsonValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double(),
    fc.string({ maxLength: 20 }),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom('toString', 'valueOf', 'role', 'content', 'type', 'text', '__proto__', 'constructor', 'x'), tie('value'), { maxKeys: 3 }),
  ),
})).value;

const message = fc.record(
  { role: fc.oneof(fc.constantFrom('user', 'system', 'assistant', 'developer', 'tool', 'function', ''), jsonValue), content: fc.oneof(fc.string({ maxLength: 40 }), jsonValue) },
  { requiredKeys: [] },
);

const body = fc.oneof(
  // Close to valid requests, with odd values in every field.
  fc
    .record(
      {
        model: fc.oneof(fc.constant(TEST_MODEL_ID), jsonValue),
        messages: fc.oneof(fc.array(message, { maxLength: 3 }), jsonValue),
        prompt: fc.oneof(fc.string({ maxLength: 40 }), jsonValue),
        user: fc.oneof(fc.string({ maxLength: 10 }), jsonValue),
        max_tokens: fc.oneof(fc.integer({ min: -2, max: 3 }), jsonValue),
        temperature: jsonValue,
        top_p: jsonValue,
        stream: fc.oneof(fc.boolean(), jsonValue),
        stream_options: jsonValue,
        stop: jsonValue,
        tools: jsonValue,
        function_call: jsonValue,
        logit_bias: jsonValue,
        response_format: jsonValue,
        n: jsonValue,
        seed: jsonValue,
      },
      { requiredKeys: [] },
    )
    .map((value) => JSON.stringify(value)),
  fc.string({ maxLength: 60 }),
  fc.integer({ min: 1, max: 20_000 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth)),
  fc.constantFrom('', '{', '{"model":', 'null', '[]', '"x"', '{"messages":[{"role":"user","content":"hi"}],"model":"' + TEST_MODEL_ID + '","max_tokens":1}'),
  fc.integer({ min: 60_000, max: 80_000 }).map((n) => JSON.stringify({ model: TEST_MODEL_ID, prompt: 'a'.repeat(n) })),
);

const header = fc.oneof(
  fc.constantFrom(
    'Host: a b',
    'Host: [::1',
    'Host: x:y',
    'Host: localhost:99999',
    'Content-Type: text/plain',
    'Content-Type: application/json; charset=utf-8',
    'Origin: https://evil.example',
    'Origin: null',
    'Expect: 100-continue',
    'Expect: teapot',
    'Authorization: Bearer wrong',
    'Authorization: Basic abc',
    'X-Api-Key: ',
    'Transfer-Encoding: gzip',
    'Connection: upgrade',
    'Upgrade: websocket',
    'x-aigw-cache-ttl: -1',
    'x-aigw-cache-ttl: abc',
    'x-aigw-skip-cache: maybe',
    'Cache-Control: no-store',
    'Accept-Encoding: br',
  ),
  fc.tuple(fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,12}$/), fc.string({ maxLength: 20 })).map(([name, value]) => `${name}: ${value.replace(/[\r\n]/g, '')}`),
  fc.integer({ min: 16_000, max: 20_000 }).map((n) => `X-Big: ${'a'.repeat(n)}`),
);

/** How the body is framed: honest content-length, a lying one, chunked, or none at all. */
const framing = fc.constantFrom('length', 'short-length', 'long-length', 'chunked', 'bad-chunk', 'none', 'both');

function frame(kind: string, payload: string): { headers: string[]; bytes: string } {
  const length = Buffer.byteLength(payload);
  switch (kind) {
    case 'length':
      return { headers: [`Content-Length: ${length}`], bytes: payload };
    case 'short-length':
      return { headers: [`Content-Length: ${Math.max(0, length - 3)}`], bytes: payload };
    case 'long-length':
      // Claims more than is sent: the server waits, the client hangs up after a moment (see below).
      return { headers: [`Content-Length: ${length + 5}`], bytes: payload };
    case 'chunked':
      return { headers: ['Transfer-Encoding: chunked'], bytes: length > 0 ? `${length.toString(16)}\r\n${payload}\r\n0\r\n\r\n` : '0\r\n\r\n' };
    case 'bad-chunk':
      return { headers: ['Transfer-Encoding: chunked'], bytes: `zz\r\n${payload}\r\n` };
    case 'both':
      return { headers: [`Content-Length: ${length}`, 'Transfer-Encoding: chunked'], bytes: payload };
    default:
      return { headers: [], bytes: '' };
  }
}

const request = fc.record({
  method,
  target,
  headers: fc.array(header, { maxLength: 4 }),
  withKey: fc.boolean(),
  jsonType: fc.boolean(),
  framing,
  body,
  version: fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1x'),
});

type FuzzRequest = typeof request extends fc.Arbitrary<infer T> ? T : never;

function bytesOf(r: FuzzRequest, apiKey: string): string {
  const framed = frame(r.framing, r.body);
  const headers = [
    ...(r.headers.some((h) => /^host:/i.test(h)) ? [] : ['Host: localhost']),
    ...(r.withKey ? [`Authorization: Bearer ${apiKey}`] : []),
    ...(r.jsonType ? ['Content-Type: application/json'] : []),
    ...r.headers,
    ...framed.headers,
    'Connection: close',
  ];
  return `${r.method} ${r.target} ${r.version}\r\n${headers.join('\r\n')}\r\n\r\n${framed.bytes}`;
}

describe('HTTP fuzz', () => {
  it(`${RUNS} raw requests: a response for each, never a 5xx, OpenAI's error shape on every 4xx`, async () => {
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const bytes = bytesOf(r, gw.apiKey);
        // A body shorter than its content-length can only end when the client gives up.
        const response = await rawExchange(port, bytes, r.framing === 'long-length' ? 1_000 : 60_000).catch((error: Error) => {
          if (r.framing === 'long-length') return 'waiting' as const;
          throw error;
        });
        if (response === 'waiting') return;
        expect(response, `no response to ${JSON.stringify(bytes.slice(0, 300))}`).toBeDefined();
        expect(response!.status, `${response!.status} for ${JSON.stringify(bytes.slice(0, 300))}: ${response!.body.slice(0, 300)}`).toBeLessThan(500);
        if (response!.status >= 400 && r.method !== 'HEAD') {
          expect(isOpenAiError(response!.body), `${response!.status} body ${JSON.stringify(response!.body.slice(0, 200))} for ${JSON.stringify(bytes.slice(0, 300))}`).toBe(true);
        }
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    // Healthy afterwards: health check and a real chat completion.
    const health = await fetch(`${gw.url}/healthz`);
    expect(health.status).toBe(200);
    const chat = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: TEST_MODEL_ID, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
    });
    expect(chat.status).toBe(200);
    const logged = gw.logs.filter((line) => typeof line.status === 'number' && (line.status as number) >= 500);
    expect(logged).toEqual([]);
  });
});
