// The gateway → model function hop for real: a model function (the gateway core over the engine,
// keys and admission off) behind a SigV4 verifier on a local port, and a front gateway whose
// backend is the upstream backend, signing with known credentials.
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { serveNode, type NodeServer } from '../../src/adapters/node-server.js';
import { toApiError, type ApiError } from '../../src/api/errors.js';
import { BackendError } from '../../src/backends/errors.js';
import { engineBackend } from '../../src/backends/engine-backend.js';
import type { GenerationInput, GenerationParams, ModelBackend } from '../../src/backends/model-backend.js';
import { sigv4Signer } from '../../src/backends/sigv4-signer.js';
import {
  UpstreamConfigError,
  promptTokenBound,
  upstreamBackend,
  type UpstreamBackendOptions,
} from '../../src/backends/upstream-backend.js';
import { generate, loadModel, unloadAllModels, type ChatMessage, type GenerationEvent, type LoadedModel } from '../../src/engine/index.js';
import { createGateway, type Gateway } from '../../src/gateway.js';
import { sigv4Verifier, type VerifiedGateway } from '../helpers/sigv4-verifier.js';
import { ensureTestModel } from '../helpers/test-models.js';

const MODEL_ID = 'aigw-demo';
const REGION = 'eu-west-1';
const KNOWN = { accessKeyId: 'AKIAAIGWTESTKEY00001', secretAccessKey: 'aigw/test/secret/key/0123456789abcdefghij' };
const WRONG = { accessKeyId: KNOWN.accessKeyId, secretAccessKey: 'not/the/secret/key/0123456789abcdefghijk' };
const PRICE = { inputMicrosPerMillionTokens: 0, outputMicrosPerMillionTokens: 0 };
const MESSAGES: ChatMessage[] = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: 'Write a short poem about the sea.' },
];
const PROMPT = 'Once upon a time, by the sea,';
const MAX_TOKENS = 24;

type LogLine = Record<string, unknown>;

/** Lets a test hold the model function's events: before event `at`, wait for `release` (or the abort). */
interface Hold {
  at: number;
  release: Promise<void>;
  onRelease?: () => void;
}

let model: LoadedModel;
let engine: ModelBackend;
let modelFunction: Gateway;
let verifier: VerifiedGateway;
let upstream: NodeServer;
let upstreamLogs: LogLine[];
let logWaiters: { match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[];
let hold: Hold | undefined;
let front: NodeServer | undefined;

beforeAll(async () => {
  model = await loadModel(await ensureTestModel({ layout: 'optimum', precision: 'int4' }), { threads: 1 });
  engine = engineBackend(model, MODEL_ID, { batchSize: 4 });
  upstreamLogs = [];
  logWaiters = [];
  modelFunction = createGateway({
    backends: new Map([[MODEL_ID, holdable(engine)]]),
    defaultModel: MODEL_ID,
    logger: {
      info: (message, ...extra) => {
        const line: LogLine = Object.assign({ message }, ...extra);
        upstreamLogs.push(line);
        logWaiters = logWaiters.filter((w) => (w.match(line) ? (w.resolve(line), false) : true));
      },
    },
    maxRequestBytes: 4 * 1024 * 1024,
    logPrompts: false,
  });
  verifier = sigv4Verifier(modelFunction, { credentials: KNOWN, region: REGION, service: 'lambda' });
  upstream = await serveNode(verifier.gateway, { host: '127.0.0.1', port: 0 });
});

beforeEach(() => {
  hold = undefined;
});

afterAll(async () => {
  await front?.close(0);
  await upstream?.close(0);
  await unloadAllModels();
});

/** The engine backend, with the test's hold applied to each generation's events. */
function holdable(inner: ModelBackend): ModelBackend {
  return {
    ...inner,
    async prepare(input: GenerationInput, params: GenerationParams) {
      const prepared = await inner.prepare(input, params);
      const held = hold;
      return { ...prepared, run: (signal: AbortSignal) => (held ? holding(prepared.run(signal), held, signal) : prepared.run(signal)) };
    },
  };
}

async function* holding(events: AsyncIterable<GenerationEvent>, held: Hold, signal: AbortSignal): AsyncGenerator<GenerationEvent> {
  let index = 0;
  for await (const event of events) {
    if (index++ === held.at) {
      await new Promise<void>((resolve, reject) => {
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        held.release.then(resolve, reject);
      });
      held.onRelease?.();
    }
    yield event;
  }
}

function nextUpstreamLog(match: (line: LogLine) => boolean): Promise<LogLine> {
  const seen = upstreamLogs.find(match);
  if (seen) return Promise.resolve(seen);
  return new Promise((resolve) => logWaiters.push({ match, resolve }));
}

function backendOptions(overrides: Partial<UpstreamBackendOptions> = {}): UpstreamBackendOptions {
  return {
    id: MODEL_ID,
    version: `${MODEL_ID}@upstream`,
    baseUrl: upstream.url,
    price: PRICE,
    contextLength: model.manifest.contextLength,
    signer: sigv4Signer({ region: REGION, service: 'lambda', credentials: KNOWN }),
    ...overrides,
  };
}

function frontGateway(backend: ModelBackend): Gateway {
  return createGateway({
    backends: new Map([[MODEL_ID, backend]]),
    defaultModel: MODEL_ID,
    logger: { info: () => undefined },
    maxRequestBytes: 4 * 1024 * 1024,
    logPrompts: false,
  });
}

/** Serves a front gateway over HTTP (closing the previous one), for tests that need a real client connection. */
async function serveFront(backend: ModelBackend): Promise<string> {
  await front?.close(0);
  front = await serveNode(frontGateway(backend), { host: '127.0.0.1', port: 0 });
  return front.url;
}

function post(gateway: Gateway, path: string, body: object): Promise<Response> {
  return gateway(
    new Request(`http://gateway.test${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }),
  );
}

/** A greedy chat request body, with overrides. */
function chatRequest(extra: object = {}): object {
  return { model: MODEL_ID, messages: MESSAGES, max_tokens: MAX_TOKENS, temperature: 0, ...extra };
}

/** A response body; the assertions check its shape. */
type Json = Record<string, any>;

async function json(response: Response): Promise<Json> {
  return (await response.json()) as Json;
}

function wrongSigner() {
  return sigv4Signer({ region: REGION, service: 'lambda', credentials: WRONG });
}

/** The data payloads of an SSE response (aigw frames each event as one `data:` line). */
async function* sseData(response: Response): AsyncGenerator<string> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (event.startsWith('data: ')) yield event.slice('data: '.length);
    }
  }
}

interface StreamResult {
  text: string;
  contentChunks: number;
  finishReason?: string;
  usage?: { prompt_tokens: number; completion_tokens: number };
  error?: { message: string; type: string; param: string | null; code: string | null };
  done: boolean;
}

async function readStream(response: Response, onContent?: (text: string) => void): Promise<StreamResult> {
  const result: StreamResult = { text: '', contentChunks: 0, done: false };
  for await (const data of sseData(response)) {
    if (data === '[DONE]') {
      result.done = true;
      continue;
    }
    const chunk = JSON.parse(data);
    if (chunk.error) result.error = chunk.error;
    const choice = chunk.choices?.[0];
    const text: string | undefined = choice?.delta?.content ?? choice?.text;
    if (text) {
      result.text += text;
      result.contentChunks++;
      onContent?.(text);
    }
    if (choice?.finish_reason) result.finishReason = choice.finish_reason;
    if (chunk.usage) result.usage = chunk.usage;
  }
  return result;
}

/** What the engine itself generates for the input, greedy: the reference for every relayed answer. */
async function direct(input: GenerationInput, maxTokens = MAX_TOKENS) {
  const promptIds = input.kind === 'chat' ? model.encodeChat(input.messages) : model.encodeText(input.prompt);
  let text = '';
  let tokenChunks = 0;
  let tokenEvents = 0;
  let firstTextEvent = -1;
  let finish: Extract<GenerationEvent, { type: 'finish' }> | undefined;
  for await (const event of generate(model, promptIds, { temperature: 0, maxTokens })) {
    text += event.text;
    if (event.type === 'token' && event.text && firstTextEvent < 0) firstTextEvent = tokenEvents;
    if (event.type === 'token') tokenEvents++;
    if (event.type === 'token' && event.text) tokenChunks++;
    if (event.type === 'finish') finish = event;
  }
  return { text, tokenChunks, tokenEvents, firstTextEvent, finishReason: finish!.finishReason, usage: finish!.usage };
}

async function runBackend(backend: ModelBackend, input: GenerationInput, params: GenerationParams, signal = new AbortController().signal) {
  const prepared = await backend.prepare(input, params);
  const events: GenerationEvent[] = [];
  for await (const event of prepared.run(signal)) events.push(event);
  return { prepared, events };
}

async function rejection(promise: Promise<unknown>): Promise<ApiError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  // A backend throws its own typed error; what the client sees is the API edge's mapping of it.
  expect(error).toBeInstanceOf(BackendError);
  return toApiError(error);
}

const chatInput: GenerationInput = { kind: 'chat', messages: MESSAGES };
const textInput: GenerationInput = { kind: 'text', prompt: PROMPT };

describe('relaying the model function', () => {
  it('answers chat and completions, whole and streamed, with the engine’s own greedy text and usage', async () => {
    const gateway = frontGateway(upstreamBackend(backendOptions()));
    const chat = await direct(chatInput);
    const text = await direct(textInput);
    expect(chat.text.length).toBeGreaterThan(0);
    expect(text.text.length).toBeGreaterThan(0);
    const accepted = verifier.accepted();

    const chatWhole = await post(gateway, '/v1/chat/completions', chatRequest());
    expect(chatWhole.status).toBe(200);
    const chatBody = await json(chatWhole);
    expect(chatBody.choices[0].message.content).toBe(chat.text);
    expect(chatBody.choices[0].finish_reason).toBe(chat.finishReason);
    expect(chatBody.usage).toMatchObject({ prompt_tokens: chat.usage.promptTokens, completion_tokens: chat.usage.completionTokens });

    const chatStream = await readStream(
      await post(gateway, '/v1/chat/completions', chatRequest({ stream: true, stream_options: { include_usage: true } })),
    );
    expect(chatStream.error).toBeUndefined();
    expect(chatStream).toMatchObject({ text: chat.text, finishReason: chat.finishReason, done: true });
    expect(chatStream.usage).toMatchObject({ prompt_tokens: chat.usage.promptTokens, completion_tokens: chat.usage.completionTokens });

    const textWhole = await post(gateway, '/v1/completions', { model: MODEL_ID, prompt: PROMPT, max_tokens: MAX_TOKENS, temperature: 0 });
    expect(textWhole.status).toBe(200);
    const textBody = await json(textWhole);
    expect(textBody.choices[0].text).toBe(text.text);
    expect(textBody.usage).toMatchObject({ prompt_tokens: text.usage.promptTokens, completion_tokens: text.usage.completionTokens });

    const textStream = await readStream(
      await post(gateway, '/v1/completions', { model: MODEL_ID, prompt: PROMPT, max_tokens: MAX_TOKENS, temperature: 0, stream: true }),
    );
    expect(textStream).toMatchObject({ text: text.text, finishReason: text.finishReason, done: true });
    expect(textStream.usage).toBeUndefined();
    // Every one of those requests passed the signature check.
    expect(verifier.accepted() - accepted).toBe(4);
  });

  it('relays the stream token by token: the client sees the first chunk while the model function still holds its last', async () => {
    const url = await serveFront(upstreamBackend(backendOptions()));
    const reference = await direct(chatInput);
    expect(reference.tokenChunks).toBeGreaterThan(1);
    const order: string[] = [];
    let release!: () => void;
    // The model function's finish event (its last chunks) waits until the client has read a token.
    hold = {
      at: reference.tokenEvents,
      release: new Promise<void>((resolve) => (release = resolve)),
      onRelease: () => order.push('upstream released its last chunk'),
    };
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chatRequest({ stream: true })),
    });
    const result = await readStream(response, () => {
      if (order.length === 0) {
        order.push('client read the first chunk');
        release();
      }
    });
    expect(order).toEqual(['client read the first chunk', 'upstream released its last chunk']);
    expect(result.text).toBe(reference.text);
    // One client chunk per token chunk of the model function: nothing merged, nothing split.
    expect(result.contentChunks).toBe(reference.tokenChunks);
  });
});

describe('signing', () => {
  it('is refused by the verifier without a signature, with the wrong secret and with a tampered body', async () => {
    const input = chatInput;
    const params = { maxTokens: 4, temperature: 0 };
    const refusals = verifier.refusals.length;

    const unsigned = await rejection(runBackend(upstreamBackend(backendOptions({ signer: undefined })), input, params));
    const wrongKey = await rejection(
      runBackend(upstreamBackend(backendOptions({ signer: wrongSigner() })), input, params),
    );
    // The signature covers the body through x-amz-content-sha256: other bytes on the wire are refused.
    const other = JSON.stringify({ model: MODEL_ID, prompt: 'other', stream: true });
    const tampering: typeof fetch = (url, init) => fetch(url, { ...init, body: other });
    const tampered = await rejection(runBackend(upstreamBackend(backendOptions({ fetch: tampering })), input, params));

    expect(verifier.refusals.slice(refusals)).toEqual(['missing', 'signature', 'body hash']);
    // The upstream refusing the gateway's own credentials is the gateway's fault, not the client's.
    for (const error of [unsigned, wrongKey, tampered]) {
      expect(error).toMatchObject({ status: 502, code: 'upstream_error', type: 'server_error' });
      expect(error.message).toContain('403');
    }
  });

  it('surfaces the refusal through the front gateway, whole and streamed', async () => {
    const gateway = frontGateway(upstreamBackend(backendOptions({ signer: wrongSigner() })));
    const whole = await post(gateway, '/v1/chat/completions', chatRequest({ max_tokens: 4 }));
    expect(whole.status).toBe(502);
    expect((await json(whole)).error).toMatchObject({ type: 'server_error', code: 'upstream_error' });
    // Streamed, the gateway waits for the first event before answering, so the status is real too.
    const streamed = await post(gateway, '/v1/chat/completions', chatRequest({ max_tokens: 4, stream: true }));
    expect(streamed.status).toBe(502);
    expect((await json(streamed)).error).toMatchObject({ type: 'server_error', code: 'upstream_error' });
  });

  it('takes the region from a Lambda function URL and refuses to guess one otherwise', async () => {
    const body = new TextEncoder().encode('{}');
    const request = {
      method: 'POST',
      url: 'https://abc123.lambda-url.ap-southeast-2.on.aws/v1/chat/completions',
      headers: { 'content-type': 'application/json' },
      body,
    };
    const signer = sigv4Signer({ service: 'lambda', credentials: KNOWN });
    const headers = await signer(request);
    expect(headers.authorization).toMatch(
      new RegExp(
        '^AWS4-HMAC-SHA256 Credential=AKIAAIGWTESTKEY00001/\\d{8}/ap-southeast-2/lambda/aws4_request, ' +
          'SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}$',
      ),
    );
    // SHA-256 of `{}`.
    expect(headers['x-amz-content-sha256']).toBe('44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
    await expect(signer({ ...request, url: 'http://127.0.0.1:9/v1/completions' })).rejects.toThrow(/no signing region/);
  });
});

describe('a plain OpenAI-compatible upstream', () => {
  it('sends the bearer key instead of a signature; a refused key is the gateway’s 502', async () => {
    // An upstream that checks a bearer key as OpenAI does, in front of the same core.
    const refusal = {
      error: { message: 'Incorrect API key provided.', type: 'invalid_request_error', param: null, code: 'invalid_api_key' },
    };
    const keyed = await serveNode(
      async (request) =>
        request.headers.get('authorization') === 'Bearer sk-upstream' ? modelFunction(request) : Response.json(refusal, { status: 401 }),
      { host: '127.0.0.1', port: 0 },
    );
    try {
      const reference = await direct(chatInput, 8);
      const plain = (apiKey: string) => upstreamBackend(backendOptions({ baseUrl: `${keyed.url}/`, signer: undefined, apiKey }));
      const { events } = await runBackend(plain('sk-upstream'), chatInput, { maxTokens: 8, temperature: 0 });
      expect(events.map((e) => e.text).join('')).toBe(reference.text);
      const refused = await rejection(runBackend(plain('sk-wrong'), chatInput, { maxTokens: 8 }));
      expect(refused).toMatchObject({ status: 502, code: 'upstream_error' });
      expect(refused.message).toContain('401');
    } finally {
      await keyed.close(0);
    }
  });

  it('refuses to be built with both a signer and a bearer key', () => {
    expect(() => upstreamBackend(backendOptions({ apiKey: 'sk-upstream' }))).toThrow(UpstreamConfigError);
  });
});

describe('token counts', () => {
  const inputs: [string, GenerationInput][] = [
    ['plain chat', chatInput],
    ['emoji', { kind: 'chat', messages: [{ role: 'user', content: '🌊🐳🏝️ waves 👩‍👩‍👧‍👦 and 🇯🇵' }] }],
    [
      'CJK',
      {
        kind: 'chat',
        messages: [
          { role: 'system', content: '你是一个乐于助人的助手。' },
          { role: 'user', content: '写一首关于大海的短诗。海の詩を書いて。바다' },
        ],
      },
    ],
    [
      'many short turns',
      {
        kind: 'chat',
        messages: [
          { role: 'user', content: 'a' },
          { role: 'assistant', content: 'b' },
          { role: 'user', content: '' },
          { role: 'assistant', content: '' },
          { role: 'user', content: 'é' },
        ],
      },
    ],
    ['text prompt', textInput],
    ['text with emoji and CJK', { kind: 'text', prompt: '海 🌊 means sea: ' }],
  ];

  it.each(inputs)('%s: prepare bounds the prompt from above; the finish event carries the real counts', async (_name, input) => {
    const backend = upstreamBackend(backendOptions());
    const reference = await direct(input, 8);
    const { prepared, events } = await runBackend(backend, input, { maxTokens: 8, temperature: 0 });
    expect(prepared.promptTokens).toBeGreaterThanOrEqual(reference.usage.promptTokens);
    expect(prepared.maxTokens).toBe(8);
    const finish = events.at(-1);
    expect(finish).toEqual({ type: 'finish', finishReason: reference.finishReason, text: '', usage: reference.usage });
    expect(events.slice(0, -1).every((e) => e.type === 'token' && e.tokenId === -1 && e.text.length > 0)).toBe(true);
    expect(events.map((e) => e.text).join('')).toBe(reference.text);
  });

  it('bounds any prompt from above, against the real tokenizer and chat template', () => {
    const message = fc.record({
      role: fc.constantFrom<ChatMessage['role']>('system', 'user', 'assistant'),
      content: fc.string({ unit: 'binary', maxLength: 200 }),
    });
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 6 }), fc.string({ unit: 'binary', maxLength: 300 }), (messages, prompt) => {
        expect(promptTokenBound({ kind: 'chat', messages })).toBeGreaterThanOrEqual(model.encodeChat(messages).length);
        expect(promptTokenBound({ kind: 'text', prompt })).toBeGreaterThanOrEqual(model.encodeText(prompt).length);
      }),
      { numRuns: 300 },
    );
  });

  it('reports the real usage in the front gateway’s final chunk, not the bound', async () => {
    const gateway = frontGateway(upstreamBackend(backendOptions()));
    const reference = await direct(chatInput);
    const result = await readStream(
      await post(gateway, '/v1/chat/completions', chatRequest({ stream: true, stream_options: { include_usage: true } })),
    );
    const bound = (await upstreamBackend(backendOptions()).prepare(chatInput, {})).promptTokens;
    expect(bound).toBeGreaterThan(reference.usage.promptTokens);
    expect(result.usage).toMatchObject({
      prompt_tokens: reference.usage.promptTokens,
      completion_tokens: reference.usage.completionTokens,
      total_tokens: reference.usage.promptTokens + reference.usage.completionTokens,
    });
  });

  it('reserves the default completion, cut to what the bound leaves of the context, and never refuses a long prompt itself', async () => {
    const context = model.manifest.contextLength;
    const backend = upstreamBackend(backendOptions({ defaultMaxTokens: 64 }));
    const short = await backend.prepare(chatInput, {});
    expect(short.maxTokens).toBe(64);
    const longInput: GenerationInput = { kind: 'text', prompt: 'x'.repeat(context - 40) };
    const long = await backend.prepare(longInput, {});
    expect(long.maxTokens).toBe(context - long.promptTokens);
    const tooLong: GenerationInput = { kind: 'text', prompt: 'x'.repeat(context * 2) };
    const over = await backend.prepare(tooLong, {});
    expect(over.promptTokens).toBeGreaterThan(context);
    // The most any prompt the upstream accepts could leave for the completion.
    expect(over.maxTokens).toBe(context - 1);
    expect((await backend.prepare(tooLong, { maxTokens: 5 })).maxTokens).toBe(5);
  });
});

describe('upstream errors', () => {
  const huge = 'the sea and the sky '.repeat(1500);

  it('passes the upstream’s 400 through with its status, code and param', async () => {
    expect(model.encodeText(huge).length).toBeGreaterThan(model.manifest.contextLength);
    const gateway = frontGateway(upstreamBackend(backendOptions()));
    const hugeChat = { model: MODEL_ID, messages: [{ role: 'user', content: huge }] };
    const chat = await post(gateway, '/v1/chat/completions', hugeChat);
    expect(chat.status).toBe(400);
    expect((await json(chat)).error).toMatchObject({ type: 'invalid_request_error', code: 'context_length_exceeded', param: 'messages' });
    const text = await post(gateway, '/v1/completions', { model: MODEL_ID, prompt: huge, max_tokens: 4 });
    expect(text.status).toBe(400);
    const textError = (await json(text)).error;
    expect(textError).toMatchObject({ type: 'invalid_request_error', code: 'context_length_exceeded', param: 'prompt' });
    expect(textError.message).toContain(`maximum context length is ${model.manifest.contextLength} tokens`);

    // Streamed too: the gateway answers only once the first event (here, the error) is known.
    const streamed = await post(gateway, '/v1/chat/completions', { ...hugeChat, stream: true });
    expect(streamed.status).toBe(400);
    expect((await json(streamed)).error).toMatchObject({ code: 'context_length_exceeded', param: 'messages' });
  });

  it('passes a parameter the upstream refuses through as the upstream named it', async () => {
    // The front gateway would refuse this itself; the backend alone shows the pass-through.
    const error = await rejection(runBackend(upstreamBackend(backendOptions()), chatInput, { maxTokens: 4, temperature: 7 }));
    expect(error).toMatchObject({ status: 400, type: 'invalid_request_error', param: 'temperature' });
    expect(error.code).not.toBeNull();
  });

  it('turns an error event mid-stream into a 502 with the upstream’s message', async () => {
    hold = { at: 2, release: Promise.reject(new Error('onnxruntime exploded')) };
    hold.release.catch(() => undefined);
    const backend = upstreamBackend(backendOptions());
    const prepared = await backend.prepare(chatInput, { maxTokens: MAX_TOKENS, temperature: 0 });
    const seen: GenerationEvent[] = [];
    const error = await rejection(
      (async () => {
        for await (const event of prepared.run(new AbortController().signal)) seen.push(event);
      })(),
    );
    expect(error).toMatchObject({ status: 502, code: 'upstream_error' });
    // The model function's own message for a failure it does not explain, never its internals.
    expect(error.message).toBe('The server had an error while processing your request. Sorry about that!');
    expect(seen.every((e) => e.type === 'token')).toBe(true);
  });

  it('answers 503 upstream_unavailable when nothing listens at the upstream', async () => {
    const port = await closedPort();
    const gateway = frontGateway(upstreamBackend(backendOptions({ baseUrl: `http://127.0.0.1:${port}`, timeoutMs: 600_000 })));
    const response = await post(gateway, '/v1/chat/completions', chatRequest({ max_tokens: 4 }));
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('1');
    const { error } = await json(response);
    expect(error).toMatchObject({ type: 'server_error', code: 'upstream_unavailable' });
    expect(error.message).toContain('could not be reached');
  });

  it('answers 503 upstream_unavailable when the upstream accepts but never answers', async () => {
    const silent = createHttpServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = silent.address() as AddressInfo;
      const backend = upstreamBackend(backendOptions({ baseUrl: `http://127.0.0.1:${port}`, timeoutMs: 50 }));
      const error = await rejection(runBackend(backend, chatInput, { maxTokens: 4 }));
      expect(error).toMatchObject({ status: 503, code: 'upstream_unavailable' });
      expect(error.message).toContain('did not answer within 50 ms');
    } finally {
      await closeServer(silent);
    }
  });
});

describe('aborting', () => {
  it('cancels the model function’s request when the client goes away mid-stream', async () => {
    const url = await serveFront(upstreamBackend(backendOptions()));
    const reference = await direct(chatInput);
    expect(reference.tokenEvents).toBeGreaterThan(reference.firstTextEvent + 1);
    // The model function sends its first token with text, then waits for a release that never comes.
    hold = { at: reference.firstTextEvent + 1, release: new Promise<void>(() => undefined) };
    const before = upstreamLogs.length;
    const client = new AbortController();
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chatRequest({ stream: true })),
      signal: client.signal,
    });
    expect(response.status).toBe(200);
    for await (const data of sseData(response)) {
      if (JSON.parse(data).choices?.[0]?.delta?.content) break;
    }
    client.abort();
    const line = await nextUpstreamLog(
      (l) => upstreamLogs.indexOf(l) >= before && l.message === 'request' && l.path === '/v1/chat/completions',
    );
    expect(line.status).toBe(499);
  });

  it('never sends a request for a signal aborted before the run starts', async () => {
    const accepted = verifier.accepted();
    const refused = verifier.refusals.length;
    const controller = new AbortController();
    controller.abort();
    const prepared = await upstreamBackend(backendOptions()).prepare(chatInput, { maxTokens: 4 });
    await expect(prepared.run(controller.signal)[Symbol.asyncIterator]().next()).rejects.toMatchObject({ name: 'AbortError' });
    expect(verifier.accepted()).toBe(accepted);
    expect(verifier.refusals.length).toBe(refused);
  });
});

async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
