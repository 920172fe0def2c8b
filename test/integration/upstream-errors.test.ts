// An upstream that is at capacity, and a max_tokens no prompt could fit beside, against a real
// HTTP server on 127.0.0.1 (the upstream backend's fetch is the real one).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { toApiError } from '../../src/api/errors.js';
import { upstreamBackend } from '../../src/backends/upstream-backend.js';

let server: ReturnType<typeof createServer>;
let baseUrl: string;

beforeAll(async () => {
  // Answers like OpenAI does when it rate-limits: 429 with an OpenAI error body.
  server = createServer((_req, res) => {
    res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '7' });
    res.end(JSON.stringify({ error: { message: 'Rate limit reached', type: 'requests', param: null, code: 'rate_limit_exceeded' } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const options = () => ({
  id: 'm',
  version: 'm@1',
  baseUrl,
  price: { inputMicrosPerMillionTokens: 0, outputMicrosPerMillionTokens: 0 },
  contextLength: 4096,
});
const input = { kind: 'chat' as const, messages: [{ role: 'user' as const, content: 'Hi' }] };

it("turns the upstream's 429 into 503 upstream_unavailable, not the client's own rate limit", async () => {
  const prepared = await upstreamBackend(options()).prepare(input, { maxTokens: 5 });
  const error = await (async () => {
    for await (const _ of prepared.run(new AbortController().signal));
  })().catch((e) => e);
  // What the client sees is the API edge's mapping of the backend's typed error.
  expect(toApiError(error)).toMatchObject({ status: 503, code: 'upstream_unavailable', headers: { 'retry-after': '7' } });
});

it('refuses a max_tokens that leaves no room for any prompt, as the engine does', async () => {
  const error = await upstreamBackend(options())
    .prepare(input, { maxTokens: 4096 })
    .catch((e: unknown) => e);
  expect(toApiError(error)).toMatchObject({
    status: 400,
    code: 'context_length_exceeded',
    param: 'max_tokens',
  });
});
