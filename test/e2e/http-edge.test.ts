// The HTTP edge with inputs a normal client never sends, over raw TCP to the real gateway (Node
// adapter, DynamoDB Local, the demo ONNX model): every request gets a status and, for errors,
// OpenAI's error shape; bad input is a 4xx, never a 500 or a dropped connection.
import { connect } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toRequest } from '../../src/adapters/lambda-streaming.js';
import { functionUrlEvent } from '../helpers/awslambda-shim.js';
import { isOpenAiError, rawExchange, type RawResponse } from '../helpers/raw-http.js';
import { startTestGateway, TEST_MODEL_ID, type TestGateway } from '../helpers/test-gateway.js';

let gw: TestGateway;
let port: number;

beforeAll(async () => {
  gw = await startTestGateway({ cache: false });
  port = Number(new URL(gw.url).port);
});

afterAll(async () => {
  await gw?.close();
});

function get(target: string, headers: string[] = ['Host: localhost']): string {
  return `GET ${target} HTTP/1.1\r\n${headers.map((h) => `${h}\r\n`).join('')}Connection: close\r\n\r\n`;
}

function post(path: string, body: string, extra: string[] = []): string {
  return (
    `POST ${path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${gw.apiKey}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n${extra.map((h) => `${h}\r\n`).join('')}Connection: close\r\n\r\n${body}`
  );
}

async function exchange(bytes: string): Promise<RawResponse> {
  const response = await rawExchange(port, bytes);
  expect(response, `connection closed without a response to ${JSON.stringify(bytes.slice(0, 80))}`).toBeDefined();
  return response!;
}

function expectError(response: RawResponse, status: number): void {
  expect(response.status).toBe(status);
  expect(isOpenAiError(response.body), response.body).toBe(true);
}

describe('odd Host headers and request targets', () => {
  it.each(['a b', '[::1', 'x:y', 'localhost:99999', 'évil', ''])('Host %j: the URL comes from the listening address', async (host) => {
    const response = await exchange(get('/healthz', [`Host: ${host}`]));
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body)).toEqual({ status: 'ok' });
  });

  it('an HTTP/1.1 request without Host is a 400 with a body', async () => {
    expectError(await exchange('GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n'), 400);
  });

  it('an absolute-form target is served by its path', async () => {
    const response = await exchange(get('http://elsewhere.example/healthz'));
    expect(response.status).toBe(200);
  });

  it.each(['*', 'example.com:443', '//healthz', '/v1/models/%ZZ'])('target %j is a 4xx with a body', async (target) => {
    const response = await exchange(get(target, ['Host: localhost', `Authorization: Bearer ${gw.apiKey}`]));
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
    expect(isOpenAiError(response.body), response.body).toBe(true);
  });

  it('a broken percent-escape in a model id is a 400, not a URIError', async () => {
    const response = await exchange(get('/v1/models/%ZZ', ['Host: localhost', `Authorization: Bearer ${gw.apiKey}`]));
    expectError(response, 400);
    expect(JSON.parse(response.body).error.code).toBe('invalid_request_target');
  });
});

describe('methods and framing Node refuses', () => {
  it.each(['TRACE', 'CONNECT'])('%s gets 405 with a body', async (method) => {
    const target = method === 'CONNECT' ? 'example.com:443' : '/healthz';
    expectError(await exchange(`${method} ${target} HTTP/1.1\r\nHost: localhost\r\n\r\n`), 405);
  });

  it('headers over 16 KB get 431 with a body', async () => {
    expectError(await exchange(get('/healthz', ['Host: localhost', `X-Big: ${'a'.repeat(20_000)}`])), 431);
  });

  it.each([
    ['a bad content-length', 'POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n'],
    ['both content-length and chunked', 'POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['a broken chunk size mid-body', 'POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\nZZ\r\n'],
    ['a garbage request line', 'HELLO\r\n\r\n'],
    ['an unknown method', 'BREW /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n'],
    ['a header without a colon', 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nNoColon\r\n\r\n'],
  ])('%s gets 400 with a body', async (_, bytes) => {
    expectError(await exchange(bytes.replace('{key}', gw.apiKey)), 400);
  });

  it('an Expect it cannot meet gets 417 with a body', async () => {
    expectError(await exchange(get('/healthz', ['Host: localhost', 'Expect: teapot'])), 417);
  });

  it('OPTIONS without Origin gets an error body, not an empty 403', async () => {
    const response = await exchange('OPTIONS /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    expectError(response, 405);
  });
});

describe('bodies that used to crash validation', () => {
  const evil = { toString: {}, valueOf: {} };
  const base = { model: TEST_MODEL_ID, messages: [{ role: 'user', content: 'hi' }] };

  it.each([
    ['function_call', { ...base, messages: [{ role: 'user', content: 'hi', function_call: evil }] }],
    ['tools', { ...base, tools: evil }],
    ['logit_bias', { ...base, logit_bias: evil }],
    ['temperature', { ...base, temperature: evil }],
    ['max_tokens', { ...base, max_tokens: evil }],
    ['role', { ...base, messages: [{ role: evil, content: 'hi' }] }],
    ['n', { ...base, n: evil }],
  ])('an object without callable toString/valueOf in %s is a 400', async (_, body) => {
    expectError(await exchange(post('/v1/chat/completions', JSON.stringify(body))), 400);
  });

  it.each(['messages', 'tools', 'stop', 'logit_bias', 'model'])('arrays nested 10,000 deep in %s are a 400', async (field) => {
    const deep = '['.repeat(10_000) + ']'.repeat(10_000);
    // The deep value comes last: it replaces the field's valid value if there was one.
    const body = `${JSON.stringify(base).slice(0, -1)},"${field}":${deep}}`;
    const response = await exchange(post('/v1/chat/completions', body));
    expectError(response, 400);
  });

  it('a body nested 64 deep is still validated normally', async () => {
    const nested = '['.repeat(60) + ']'.repeat(60);
    const response = await exchange(post('/v1/chat/completions', JSON.stringify({ ...base, tools: 'x' }).replace('"x"', nested)));
    expectError(response, 400);
    expect(JSON.parse(response.body).error.param).toBe('tools');
  });
});

describe('a client that hangs up mid-upload', () => {
  it('is logged as 499, not 500', async () => {
    const before = gw.logs.length;
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.on('connect', resolve));
    socket.write(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${gw.apiKey}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model":`,
    );
    await delay(200);
    socket.destroy();
    let line: Record<string, unknown> | undefined;
    while (!line) {
      line = gw.logs.slice(before).find((l) => l.path === '/v1/chat/completions' && typeof l.status === 'number');
      if (!line) await delay(50);
    }
    expect(line.status).toBe(499);
  });
});

describe('the Lambda adapter with the same classes of input', () => {
  it.each(['TRACE', 'CONNECT', 'TRACK'])('%s is answered 405 in OpenAI shape, without reaching the gateway', async (method) => {
    const event = functionUrlEvent('models-list', { API_KEY: 'k', ORIGIN_SECRET: 's' });
    event.requestContext.http.method = method;
    const result = toRequest(event);
    expect(result).toBeInstanceOf(Response);
    const response = result as Response;
    expect(response.status).toBe(405);
    expect(isOpenAiError(await response.text())).toBe(true);
  });

  it('a header no Request can hold is a 400', async () => {
    const event = functionUrlEvent('models-list', { API_KEY: 'k', ORIGIN_SECRET: 's' });
    event.headers['bad header'] = 'x';
    const response = toRequest(event) as Response;
    expect(response.status).toBe(400);
    expect(isOpenAiError(await response.text())).toBe(true);
  });

  it('an odd Host and a broken percent-escape still make a Request on the function domain', () => {
    const event = functionUrlEvent('models-list', { API_KEY: 'k', ORIGIN_SECRET: 's' });
    event.headers.host = '[::1';
    event.rawPath = '/v1/models/%ZZ';
    const request = toRequest(event) as Request;
    expect(request).toBeInstanceOf(Request);
    expect(new URL(request.url).hostname).toBe(event.requestContext.domainName);
    expect(new URL(request.url).pathname).toBe('/v1/models/%ZZ');
  });
});
