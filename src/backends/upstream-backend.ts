import type { ModelPrice } from '../admission/pricing.js';
import { parseSse } from './sse-parser.js';
import type { FinishReason, GenerationEvent, Usage } from '../engine/index.js';
import { BackendError } from './errors.js';
import type { GenerationInput, GenerationParams, ModelBackend, PreparedGeneration } from './model-backend.js';

/** What a signer sees: the exact request fetch will send, body bytes included. */
export interface SignableRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Uint8Array;
}

/** Returns the headers to add to the request (for SigV4: authorization, x-amz-date, x-amz-content-sha256...). */
export type RequestSigner = (request: SignableRequest) => Promise<Record<string, string>>;

export interface UpstreamBackendOptions {
  /** The public model id clients send. */
  id: string;
  version: string;
  /** Where the upstream's OpenAI API lives, without `/v1`, e.g. a model function URL. */
  baseUrl: string;
  price: ModelPrice;
  contextLength: number;
  /** The model id sent upstream; defaults to `id`. */
  upstreamModel?: string;
  /** Completion tokens when a request sets none (cut to what the context has left). */
  defaultMaxTokens?: number;
  /** SigV4 for model functions; absent for a plain OpenAI-compatible upstream. */
  signer?: RequestSigner;
  /** A bearer token, e.g. for OpenAI itself; not together with a signer. */
  apiKey?: string;
  fetch?: typeof fetch;
  /** The longest wait for the upstream's response headers (a cold model function loads its model first). */
  timeoutMs?: number;
  ownedBy?: string;
  /**
   * The upstream takes vLLM's `continue_final_message` (aigw and vLLM do): it can continue a
   * partial assistant reply, so a fallback chain may resume a broken stream on it.
   */
  continuesChat?: boolean;
}

/** Options that can't work together. */
export class UpstreamConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UpstreamConfigError';
  }
}

const DEFAULT_TIMEOUT_MS = 120_000;
/**
 * Chat-template tokens around each message (start and end markers, separators) and around the
 * whole prompt (BOS, the assistant header); the role's own text is counted by its bytes.
 */
const TEMPLATE_TOKENS_PER_MESSAGE = 8;
const TEMPLATE_TOKENS_PER_PROMPT = 16;

const encoder = new TextEncoder();

/**
 * An OpenAI-compatible server as a backend: a model function (SigV4-signed), vLLM, OpenAI. Token
 * counts before generation are upper bounds, because the tokenizer lives upstream; the real
 * counts arrive with the stream's usage chunk.
 */
export function upstreamBackend(options: UpstreamBackendOptions): ModelBackend {
  if (options.signer && options.apiKey) throw new UpstreamConfigError('give an upstream either a signer or an apiKey, not both');
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const created = Math.floor(Date.now() / 1000);
  return {
    id: options.id,
    version: options.version,
    price: options.price,
    created,
    ownedBy: options.ownedBy ?? 'aigw',
    contextLength: options.contextLength,
    continuesChat: options.continuesChat === true,
    async prepare(input: GenerationInput, params: GenerationParams): Promise<PreparedGeneration> {
      if (input.kind === 'chat' && input.continueFinalMessage && !options.continuesChat) {
        throw new BackendError('upstream_refused', `The model \`${options.id}\` cannot continue a partial assistant message.`, {
          refusal: { status: 400, param: 'continue_final_message', code: 'unsupported_parameter' },
        });
      }
      const promptTokens = promptTokenBound(input);
      const { maxTokens, sentMaxTokens } = completionBound(options, promptTokens, params.maxTokens);
      const path = input.kind === 'chat' ? '/v1/chat/completions' : '/v1/completions';
      const body = requestBody(options.upstreamModel ?? options.id, input, params, sentMaxTokens);
      return {
        promptTokens,
        maxTokens,
        run: (signal) => streamFromUpstream(options, `${baseUrl}${path}`, body, input.kind, signal),
      };
    },
  };
}

/**
 * Byte-level BPE (GPT-2, Llama 3, Qwen) maps every byte to at least one vocabulary entry and each
 * token covers at least one byte, so no text makes more tokens than it has UTF-8 bytes; the same
 * holds for SentencePiece with byte fallback. Only template markers are added on top. A template
 * that injects text of its own (a default system prompt) needs a backend with a tokenizer.
 */
export function promptTokenBound(input: GenerationInput): number {
  if (input.kind === 'text') return encoder.encode(input.prompt).length + TEMPLATE_TOKENS_PER_PROMPT;
  let bound = TEMPLATE_TOKENS_PER_PROMPT;
  for (const message of input.messages) {
    bound += encoder.encode(message.role).length + encoder.encode(message.content).length + TEMPLATE_TOKENS_PER_MESSAGE;
  }
  return bound;
}

/**
 * The completion budget admission reserves, and the max_tokens sent upstream to hold it. A prompt
 * whose bound leaves no room is still sent (the upstream knows its real length) without
 * max_tokens; then the reservation is the most any prompt of one token could leave.
 */
function completionBound(
  options: UpstreamBackendOptions,
  promptTokens: number,
  requested: number | undefined,
): { maxTokens: number; sentMaxTokens: number | undefined } {
  if (requested !== undefined) {
    // No prompt fits beside this many: say so as the engine would, before reserving a budget for it.
    if (requested >= options.contextLength) {
      throw new BackendError(
        'context_length_exceeded',
        `This model's maximum context length is ${options.contextLength} tokens, but max_tokens is ${requested}. Please reduce max_tokens.`,
        { param: 'max_tokens' },
      );
    }
    return { maxTokens: requested, sentMaxTokens: requested };
  }
  const room = options.contextLength - promptTokens;
  if (room < 1) return { maxTokens: Math.max(options.contextLength - 1, 1), sentMaxTokens: undefined };
  const maxTokens = Math.min(options.defaultMaxTokens ?? room, room);
  return { maxTokens, sentMaxTokens: maxTokens };
}

function requestBody(model: string, input: GenerationInput, params: GenerationParams, maxTokens: number | undefined): Uint8Array {
  const body: Record<string, unknown> = {
    model,
    ...(input.kind === 'chat' ? { messages: input.messages.map(({ role, content }) => ({ role, content })) } : { prompt: input.prompt }),
    // vLLM's pair: the last (assistant) message is continued, not answered.
    ...(input.kind === 'chat' && input.continueFinalMessage ? { continue_final_message: true, add_generation_prompt: false } : {}),
    max_tokens: maxTokens,
    temperature: params.temperature,
    top_p: params.topP,
    seed: params.seed,
    stop: params.stop && params.stop.length > 0 ? params.stop : undefined,
    presence_penalty: params.presencePenalty,
    frequency_penalty: params.frequencyPenalty,
    // vLLM's extensions: sent only when asked for, as OpenAI refuses unknown fields.
    top_k: params.topK,
    repetition_penalty: params.repetitionPenalty,
    stream: true,
    stream_options: { include_usage: true },
  };
  // JSON.stringify drops the undefined fields; the signer and fetch get these exact bytes.
  return encoder.encode(JSON.stringify(body));
}

async function* streamFromUpstream(
  options: UpstreamBackendOptions,
  url: string,
  body: Uint8Array,
  kind: GenerationInput['kind'],
  signal: AbortSignal,
): AsyncGenerator<GenerationEvent, void, undefined> {
  // One controller for the whole exchange: the client going away cancels the request and its body.
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    signal.throwIfAborted();
    const response = await send(options, url, body, controller, signal);
    if (!response.ok) throw await upstreamError(response);
    if (!response.body || !/^text\/event-stream\b/i.test(response.headers.get('content-type') ?? '')) {
      await response.body?.cancel().catch(() => undefined);
      throw upstreamFailure(`the upstream answered ${response.headers.get('content-type') ?? 'no body'} instead of an event stream`);
    }
    yield* relay(response.body, kind, signal);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** Upstream chunks as generation events: one token event per non-empty delta, then the finish with the real usage. */
async function* relay(
  body: ReadableStream<Uint8Array>,
  kind: GenerationInput['kind'],
  signal: AbortSignal,
): AsyncGenerator<GenerationEvent, void, undefined> {
  let finishReason: FinishReason | undefined;
  let usage: Usage | undefined;
  try {
    for await (const event of parseSse(body)) {
      if (event.data === '[DONE]') break;
      const chunk = parseChunk(event.event, event.data);
      const choice = chunk.choices?.[0];
      const text = kind === 'chat' ? choice?.delta?.content : choice?.text;
      if (typeof text === 'string' && text.length > 0) yield { type: 'token', tokenId: -1, text };
      if (choice?.finish_reason) finishReason = choice.finish_reason === 'length' ? 'length' : 'stop';
      if (chunk.usage) usage = usageOf(chunk.usage);
    }
  } catch (error) {
    signal.throwIfAborted();
    if (error instanceof BackendError) throw error;
    throw upstreamFailure('the upstream stream broke off', error);
  }
  if (!finishReason) throw upstreamFailure('the upstream stream ended without a finish reason');
  if (!usage) throw upstreamFailure('the upstream stream ended without usage');
  yield { type: 'finish', finishReason, text: '', usage };
}

/** Signs and POSTs the request; the timeout covers the wait for response headers only, not the stream. */
async function send(
  options: UpstreamBackendOptions,
  url: string,
  body: Uint8Array,
  controller: AbortController,
  signal: AbortSignal,
): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'text/event-stream' };
  if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
  if (options.signer) Object.assign(headers, await options.signer({ method: 'POST', url, headers: { ...headers }, body }));

  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  try {
    return await (options.fetch ?? fetch)(url, { method: 'POST', headers, body, signal: controller.signal });
  } catch {
    signal.throwIfAborted();
    const why = timedOut ? `did not answer within ${timeoutMs} ms` : 'could not be reached';
    throw new BackendError('upstream_unavailable', `The model server ${why}. Please try again shortly.`, { retryAfterSeconds: '1' });
  } finally {
    clearTimeout(timer);
  }
}

interface UpstreamChunk {
  choices?: { delta?: { content?: unknown }; text?: unknown; finish_reason?: string | null }[];
  usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } | null;
  error?: { message?: unknown };
}

function parseChunk(eventType: string, data: string): UpstreamChunk {
  let chunk: UpstreamChunk;
  try {
    chunk = JSON.parse(data) as UpstreamChunk;
  } catch (error) {
    throw upstreamFailure('the upstream sent an event that is not JSON', error);
  }
  if (typeof chunk !== 'object' || chunk === null) throw upstreamFailure('the upstream sent an event that is not an object');
  if (eventType === 'error' || chunk.error) {
    const message = typeof chunk.error?.message === 'string' ? chunk.error.message : 'The model server failed mid-stream.';
    throw new BackendError('upstream_failed', message);
  }
  return chunk;
}

function usageOf(usage: NonNullable<UpstreamChunk['usage']>): Usage {
  const { prompt_tokens: promptTokens, completion_tokens: completionTokens } = usage;
  if (!Number.isInteger(promptTokens) || !Number.isInteger(completionTokens)) throw upstreamFailure('the upstream sent malformed usage');
  return { promptTokens: promptTokens as number, completionTokens: completionTokens as number };
}

/**
 * Client errors the upstream explains (context length, a parameter it refuses) go to the client
 * as they are. The upstream refusing the gateway's own credentials, failing, or answering
 * something unreadable is the gateway's problem: 502. A throttled model function is busy: 503.
 */
async function upstreamError(response: Response): Promise<BackendError> {
  const text = await response.text().catch(() => '');
  const error = openAiError(text);
  const status = response.status;
  if (status === 401 || status === 403) {
    return new BackendError('upstream_failed', `The model server refused the gateway's credentials (HTTP ${status}).`);
  }
  // Before the 4xx pass-through: an upstream's 429 is the model's capacity, not the client's limit.
  if (status === 429) {
    return new BackendError('upstream_unavailable', 'The model is at capacity. Please try again shortly.', {
      retryAfterSeconds: response.headers.get('retry-after') ?? '1',
    });
  }
  if (status >= 400 && status < 500 && error) {
    return new BackendError('upstream_refused', error.message, { refusal: { status, type: error.type, param: error.param, code: error.code } });
  }
  return new BackendError('upstream_failed', `The model server failed (HTTP ${status}).`);
}

function openAiError(text: string): { message: string; type?: string; param: string | null; code: string | null } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  const error = (parsed as { error?: Record<string, unknown> } | null)?.error;
  if (typeof error !== 'object' || error === null || typeof error.message !== 'string') return undefined;
  const stringOrNull = (value: unknown) => (typeof value === 'string' ? value : null);
  return {
    message: error.message,
    type: typeof error.type === 'string' ? error.type : undefined,
    param: stringOrNull(error.param),
    code: stringOrNull(error.code),
  };
}

function upstreamFailure(message: string, cause?: unknown): BackendError {
  return new BackendError('upstream_failed', `The model server sent a broken response: ${message}.`, { cause });
}
