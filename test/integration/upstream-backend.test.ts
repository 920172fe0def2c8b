// The gateway → model function hop for real: a model function (the gateway core over the engine,
// keys and admission off) behind a SigV4 verifier on a local port, and a front gateway whose
// backend is the upstream backend, signing with known credentials.
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { serveNode, type NodeServer } from '../../src/adapters/node-server.js';
import { ApiError } from '../../src/api/errors.js';
import { engineBackend } from '../../src/backends/engine-backend.js';
import type { GenerationInput, GenerationParams, ModelBackend } from '../../src/backends/model-backend.js';
import { sigv4Signer } from '../../src/backends/sigv4-signer.js';
import { upstreamBackend, type UpstreamBackendOptions } from '../../src/backends/upstream-backend.js';
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
  const modelFunction = createGateway({
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
    new Request(`http://gateway.test${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  );
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
  let finish: Extract<GenerationEvent, { type: 'finish' }> | undefined;
  for await (const event of generate(model, promptIds, { temperature: 0, maxTokens })) {
    text += event.text;
    if (event.type === 'token') tokenEvents++;
    if (event.type === 'token' && event.text) tokenChunks++;
    if (event.type === 'finish') finish = event;
  }
  return { text, tokenChunks, tokenEvents, finishReason: finish!.finishReason, usage: finish!.usage };
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
  expect(error).toBeInstanceOf(ApiError);
  return error as ApiError;
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

    const chatWhole = await post(gateway, '/v1/chat/completions', { model: MODEL_ID, messages: MESSAGES, max_tokens: MAX_TOKENS, temperature: 0 });
    expect(chatWhole.status).toBe(200);
    const chatBody = await chatWhole.json();
    expect(chatBody.choices[0].message.content).toBe(chat.text);
    expect(chatBody.choices[0].finish_reason).toBe(chat.finishReason);
    expect(chatBody.usage).toMatchObject({ prompt_tokens: chat.usage.promptTokens, completion_tokens: chat.usage.completionTokens });

    const chatStream = await readStream(
      await post(gateway, '/v1/chat/completions', {
        model: MODEL_ID,
        messages: MESSAGES,
        max_tokens: MAX_TOKENS,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
      }),
    );
    expect(chatStream.error).toBeUndefined();
    expect(chatStream).toMatchObject({ text: chat.text, finishReason: chat.finishReason, done: true });
    expect(chatStream.usage).toMatchObject({ prompt_tokens: chat.usage.promptTokens, completion_tokens: chat.usage.completionTokens });

    const textWhole = await post(gateway, '/v1/completions', { model: MODEL_ID, prompt: PROMPT, max_tokens: MAX_TOKENS, temperature: 0 });
    expect(textWhole.status).toBe(200);
    const textBody = await textWhole.json();
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
      body: JSON.stringify({ model: MODEL_ID, messages: MESSAGES, max_tokens: MAX_TOKENS, temperature: 0, stream: true }),
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
