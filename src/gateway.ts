// The gateway: one function from a Web-standard Request to a Response, the same on a laptop
// and in Lambda. authenticate → validate → resolve model → prepare → generate → stream → log.
import { randomBytes } from 'node:crypto';
import type { ApiKeyRecord } from './admission/index.js';
import {
  ApiError,
  SSE_HEADERS,
  chatCompletion,
  chatCompletionChunk,
  errorResponse,
  invalidApiKey,
  malformedJson,
  methodNotAllowed,
  missingApiKey,
  modelList,
  modelNotFound,
  modelObject,
  newCompletionId,
  notFound,
  parseChatCompletionRequest,
  parseCompletionRequest,
  parseGenerateRequest,
  payloadTooLarge,
  sseResponseBody,
  textCompletion,
  textCompletionChunk,
  toApiError,
  unsupportedMediaType,
  type ChatCompletionRequest,
  type CompletionRequest,
  type GenerateRequest,
} from './api/index.js';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { AdmissionRejectedError, AdmissionUnavailableError, formatUsd } from './admission/index.js';
import { originAllowed, originNotAllowed, preflightResponse, withCorsHeaders } from './api/cors.js';
import { rateLimitHeaders } from './api/rate-limit-headers.js';
import type { GenerationInput, GenerationParams, ModelBackend } from './backends/model-backend.js';
import { CACHE_STATUS_HEADER } from './cache/index.js';
import type { FinishReason, GenerationEvent, Usage } from './engine/index.js';
import { stickinessKey, type ModelResolver } from './routing/index.js';
import { startGeneration, type AdmissionSetup, type CacheSetup, type StartedGeneration } from './generation-flow.js';
import { emitBudgetThresholdCrossed, emitModelVersionMetrics, emitRequestMetrics, requestLog, type RequestLogger } from './telemetry/index.js';

export interface GatewayOptions {
  /** Public model id → backend: bare names and exact versions (`qwen@4`), see ModelRegistry. */
  backends: ReadonlyMap<string, ModelBackend>;
  /** Aliases in DynamoDB that point a name at versions (blue/green, canary); absent: none. */
  aliases?: ModelResolver;
  /** The model /v1/generate uses when the request names none. */
  defaultModel: string;
  /** Looks a presented API key up; absent when keys are switched off (a model function behind IAM). */
  authenticate?: (presentedKey: string) => Promise<ApiKeyRecord | null>;
  logger: RequestLogger;
  maxRequestBytes: number;
  /** Prompts and completions are logged only when the operator turns this on. */
  logPrompts: boolean;
  /** Rate limits, concurrency caps and budgets; absent when keys are off. */
  admission?: AdmissionSetup;
  /** The response cache; absent to switch it off. */
  cache?: CacheSetup;
  /** Browser origins allowed to call the gateway (CORS); a key may narrow them further. */
  allowedOrigins?: readonly string[];
  /** CloudWatch EMF metrics (Powertools); absent to emit none. */
  metrics?: Metrics;
}

/** What the runtime adapter offers a request besides the Request itself. */
export interface GatewayContext {
  /**
   * Work that may finish after the response (the usage roll-up, budget alerts): the
   * adapter keeps the process alive until it has (a Lambda handler awaits it before returning).
   */
  waitUntil(work: Promise<void>): void;
}

export type Gateway = (request: Request, context?: GatewayContext) => Promise<Response>;

/** Without an adapter that tracks background work, it just runs; failures are already logged. */
const DETACHED: GatewayContext = { waitUntil: (work) => void work.catch(() => undefined) };

interface RequestContext {
  runtime: GatewayContext;
  requestId: string;
  started: number;
  key?: ApiKeyRecord;
  log: ReturnType<typeof requestLog>;
}

type Endpoint = 'chat' | 'completions' | 'generate';

/** Which model version served a response (`name@version`), the same as its `model` field. */
export const MODEL_VERSION_HEADER = 'x-aigw-model-version';

export function createGateway(options: GatewayOptions): Gateway {
  return async (request, runtime = DETACHED) => {
    const ctx: RequestContext = {
      runtime,
      requestId: `req_${randomBytes(12).toString('hex')}`,
      started: performance.now(),
      log: requestLog(
        options.logger,
        options.logPrompts,
        options.metrics &&
          ((fields) => {
            emitRequestMetrics(options.metrics!, fields);
            emitModelVersionMetrics(options.metrics!, fields);
          }),
      ),
    };
    ctx.log.set({ requestId: ctx.requestId, method: request.method, path: new URL(request.url).pathname });
    const origin = request.headers.get('origin');
    const allowedOrigins = options.allowedOrigins ?? [];
    if (request.method === 'OPTIONS') {
      const preflight = preflightResponse(origin, allowedOrigins);
      preflight.headers.set('x-request-id', ctx.requestId);
      return preflight;
    }
    let response: Response;
    try {
      if (origin && !originAllowed(origin, allowedOrigins)) throw originNotAllowed(origin);
      response = await route(options, request, ctx);
    } catch (error) {
      const apiError = toApiError(error, { promptParam: new URL(request.url).pathname === '/v1/completions' ? 'prompt' : 'messages' });
      ctx.log.set({ errorCode: apiError.code, ...(error instanceof AdmissionRejectedError ? { rejectedBy: error.reason } : {}) });
      if (apiError.status >= 500) ctx.log.set({ error: describe(error) });
      response = errorResponse(apiError);
    }
    response.headers.set('x-request-id', ctx.requestId);
    if (origin && response.status !== 403) withCorsHeaders(response, origin);
    // A streamed response logs itself when the stream ends; everything else is done now.
    if (!isEventStream(response)) ctx.log.finish(response.status, ctx.started);
    return response;
  };
}

async function route(options: GatewayOptions, request: Request, ctx: RequestContext): Promise<Response> {
  const { pathname } = new URL(request.url);
  if (pathname === '/healthz') {
    return request.method === 'GET' ? Response.json({ status: 'ok' }) : errorResponse(methodNotAllowed());
  }
  if (!pathname.startsWith('/v1/')) return errorResponse(notFound(pathname));

  const endpoint = endpointOf(pathname);
  const isModels = pathname === '/v1/models' || pathname.startsWith('/v1/models/');
  if (!endpoint && !isModels) return errorResponse(notFound(pathname));
  if (endpoint && request.method !== 'POST') return errorResponse(methodNotAllowed());
  if (isModels && request.method !== 'GET') return errorResponse(methodNotAllowed());

  if (options.authenticate) ctx.key = await authenticate(options.authenticate, request, ctx);
  const origin = request.headers.get('origin');
  const keyOrigins = ctx.key?.allowedOrigins ?? [];
  if (origin && keyOrigins.length > 0 && !originAllowed(origin, keyOrigins)) throw originNotAllowed(origin);

  if (isModels) return await listModels(options, pathname, ctx);
  const body = await readJsonBody(request, options.maxRequestBytes);
  return generateResponse(options, endpoint!, body, request, ctx);
}

function endpointOf(pathname: string): Endpoint | undefined {
  if (pathname === '/v1/chat/completions') return 'chat';
  if (pathname === '/v1/completions') return 'completions';
  if (pathname === '/v1/generate') return 'generate';
  return undefined;
}

async function authenticate(
  lookup: NonNullable<GatewayOptions['authenticate']>,
  request: Request,
  ctx: RequestContext,
): Promise<ApiKeyRecord> {
  const header = request.headers.get('authorization');
  const presented = header?.match(/^Bearer\s+(.+)$/i)?.[1]?.trim() ?? request.headers.get('x-api-key')?.trim();
  if (!presented) throw missingApiKey();
  let key: ApiKeyRecord | null;
  try {
    key = await lookup(presented);
  } catch (error) {
    // Keys can't be checked: refuse (fail_open never lets an unauthenticated request in).
    throw new AdmissionUnavailableError(`API keys cannot be checked: ${describe(error)}`, { cause: error });
  }
  if (!key) throw invalidApiKey();
  ctx.log.set({ keyId: key.keyId });
  return key;
}

/** A key limited to some models may send those names: an alias, a model's name (any version) or one version. */
function keyMayUse(key: ApiKeyRecord | undefined, model: string): boolean {
  const allowed = key?.allowedModels ?? [];
  return allowed.length === 0 || allowed.includes(model) || allowed.includes(model.split('@')[0]!);
}

function resolveBackend(options: GatewayOptions, model: string, key: ApiKeyRecord | undefined): ModelBackend {
  // A model the key may not use is reported exactly like one that does not exist.
  const backend = keyMayUse(key, model) ? options.backends.get(model) : undefined;
  if (!backend) throw modelNotFound(model);
  return backend;
}

/** The requested name through its alias, if it is one, to the version that serves this caller. */
async function resolveModel(options: GatewayOptions, model: string, request: Request, user: string | undefined, ctx: RequestContext): Promise<ModelBackend> {
  if (!options.aliases || !keyMayUse(ctx.key, model)) return resolveBackend(options, model, ctx.key);
  const stickiness = stickinessKey({ keyId: ctx.key?.keyId, session: request.headers.get('x-aigw-session'), user });
  const resolved = await options.aliases.resolve(model, stickiness, options.backends);
  if (!resolved) throw modelNotFound(model);
  if (resolved.alias) ctx.log.set({ alias: resolved.alias.name, aliasRevision: resolved.alias.revision, aliasRole: resolved.alias.role });
  return resolved.backend;
}

async function listModels(options: GatewayOptions, pathname: string, ctx: RequestContext): Promise<Response> {
  const objectOf = (id: string, backend: ModelBackend) => modelObject(id, backend.created, backend.ownedBy);
  if (pathname === '/v1/models') {
    const served = [...options.backends].filter(([id]) => keyMayUse(ctx.key, id)).map(([id, backend]) => objectOf(id, backend));
    const aliasNames = options.aliases ? await options.aliases.aliasNames() : [];
    const aliases = aliasNames
      .filter((name) => !options.backends.has(name) && keyMayUse(ctx.key, name))
      .map((name) => modelObject(name, served[0]?.created ?? Math.floor(Date.now() / 1000), 'aigw'));
    return Response.json(modelList([...served, ...aliases]));
  }
  const id = decodeURIComponent(pathname.slice('/v1/models/'.length));
  const backend = options.aliases ? await resolveModel(options, id, new Request('http://aigw/'), undefined, ctx) : resolveBackend(options, id, ctx.key);
  return Response.json(objectOf(id, backend));
}

async function readJsonBody(request: Request, maxBytes: number): Promise<unknown> {
  const contentType = request.headers.get('content-type') ?? '';
  if (!/^application\/json\b/i.test(contentType)) throw unsupportedMediaType();
  const declared = Number(request.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) throw payloadTooLarge(maxBytes);

  // Count while reading: a missing or lying content-length must not let a huge body in.
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (request.body) {
    const reader = request.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel();
        throw payloadTooLarge(maxBytes);
      }
      chunks.push(value);
    }
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    throw malformedJson();
  }
}

interface NormalizedRequest {
  model: string;
  /** OpenAI's `user` field: with an alias, it keeps one end user on one version. */
  user?: string;
  input: GenerationInput;
  params: GenerationParams;
  stream: boolean;
  includeUsage: boolean;
}

function normalize(endpoint: Endpoint, body: unknown, defaultModel: string): NormalizedRequest {
  if (endpoint === 'chat') {
    const req: ChatCompletionRequest = parseChatCompletionRequest(body);
    return { model: req.model, user: req.user, input: { kind: 'chat', messages: req.messages }, params: paramsOf(req), stream: req.stream, includeUsage: req.includeUsage };
  }
  if (endpoint === 'completions') {
    const req: CompletionRequest = parseCompletionRequest(body);
    return { model: req.model, user: req.user, input: { kind: 'text', prompt: req.prompt }, params: paramsOf(req), stream: req.stream, includeUsage: req.includeUsage };
  }
  const req: GenerateRequest = parseGenerateRequest(body);
  return { model: req.model ?? defaultModel, input: { kind: 'chat', messages: req.messages }, params: paramsOf(req), stream: req.stream, includeUsage: true };
}

function paramsOf(req: ChatCompletionRequest | CompletionRequest | GenerateRequest): GenerationParams {
  // OpenAI accepts top_p 0, which can only mean "the single most likely token".
  const greedy = req.topP === 0;
  return {
    maxTokens: req.maxTokens,
    stop: req.stop,
    temperature: greedy ? 0 : req.temperature,
    topP: greedy ? undefined : req.topP,
    topK: req.topK,
    seed: req.seed,
    presencePenalty: req.presencePenalty,
    frequencyPenalty: req.frequencyPenalty,
    repetitionPenalty: req.repetitionPenalty,
  };
}

async function generateResponse(
  options: GatewayOptions,
  endpoint: Endpoint,
  body: unknown,
  request: Request,
  ctx: RequestContext,
): Promise<Response> {
  const req = normalize(endpoint, body, options.defaultModel);
  const backend = await resolveModel(options, req.model, request, req.user, ctx);
  ctx.log.set({ model: backend.id, modelVersion: backend.version, stream: req.stream });
  ctx.log.setPrompt(req.input);
  const prepared = await backend.prepare(req.input, req.params);
  ctx.log.set({ promptTokens: prepared.promptTokens });

  const started = await startGeneration(options.admission, options.cache, {
    backend,
    prepared,
    input: req.input,
    params: req.params,
    key: ctx.key,
    headers: request.headers,
    signal: request.signal,
    warn: (message, error) => options.logger.info('warning', { requestId: ctx.requestId, warning: message, ...(error ? { cause: describe(error) } : {}) }),
    waitUntil: (work) => ctx.runtime.waitUntil(work),
    onBudgetCrossing: (crossing) => {
      // An audit event of its own (not part of the request line) and a metric that alarms.
      options.logger.info('budget_threshold_crossed', { requestId: ctx.requestId, keyId: ctx.key?.keyId, ...crossing });
      if (options.metrics) emitBudgetThresholdCrossed(options.metrics, crossing.percent);
    },
  });
  ctx.log.set({ cache: started.cacheStatus });
  // Like OpenAI's dated snapshots: `model` says the exact version that served, never the alias.
  const headers: Record<string, string> = {
    [CACHE_STATUS_HEADER]: started.cacheStatus,
    [MODEL_VERSION_HEADER]: backend.version,
    ...rateLimitHeaders(started.rateLimits),
  };
  const shape: ResponseShape = {
    endpoint,
    id: newCompletionId(endpoint === 'completions' ? 'cmpl' : 'chatcmpl'),
    created: Math.floor(Date.now() / 1000),
    model: backend.version,
  };
  if (!req.stream) {
    const { text, finishReason, usage, costMicros } = await collect(started, ctx);
    return Response.json(completeBody(shape, text, finishReason, usage), { headers: { ...headers, 'x-aigw-cost-usd': formatUsd(costMicros) } });
  }
  // Wait for the first event before answering 200: a failure before any token (an upstream's
  // 400, a model that cannot run) then gets its real status instead of an error event.
  const pending = started.events[Symbol.asyncIterator]();
  let first: IteratorResult<GenerationEvent>;
  try {
    first = await pending.next();
  } catch (error) {
    await started.finish({ completionTokens: 0 });
    throw error;
  }
  const events = streamEvents(shape, { ...started, events: resumed(first, pending) }, request.signal, req.includeUsage, ctx);
  return new Response(sseResponseBody(closingEarly(events, () => abandon(started, pending, ctx))), {
    status: 200,
    headers: { ...SSE_HEADERS, ...headers },
  });
}

/**
 * A client that leaves before the body's first read cancels a generator that never started, so
 * its `finally` never runs: this makes sure the backend, the admission and the log are still closed.
 */
function closingEarly<T>(events: AsyncGenerator<T>, onUnstarted: () => Promise<void>): AsyncGenerator<T> {
  let started = false;
  const original = events.return.bind(events);
  return Object.assign(events, {
    next: ((next) => (...args: []) => ((started = true), next(...args)))(events.next.bind(events)),
    async return(value: T | PromiseLike<T>) {
      if (!started) await onUnstarted();
      return original(value);
    },
  });
}

async function abandon(started: StartedGeneration, pending: AsyncIterator<GenerationEvent>, ctx: RequestContext): Promise<void> {
  await pending.return?.();
  await started.finish({ completionTokens: 0 });
  ctx.log.finish(499, ctx.started);
}

/** The events of an iterator whose first result was already taken. */
async function* resumed(first: IteratorResult<GenerationEvent>, rest: AsyncIterator<GenerationEvent>): AsyncGenerator<GenerationEvent> {
  if (first.done) return;
  try {
    yield first.value;
    for (let next = await rest.next(); !next.done; next = await rest.next()) yield next.value;
  } finally {
    // Ending early (client gone) must reach the source, so generation stops.
    await rest.return?.();
  }
}

interface ResponseShape {
  endpoint: Endpoint;
  id: string;
  created: number;
  model: string;
}

/**
 * A whole (non-streamed) answer. The generation is settled whatever happens, and only once the
 * backend's events have ended: a concurrency slot is never free while the backend still runs.
 */
async function collect(started: StartedGeneration, ctx: RequestContext) {
  let text = '';
  let completionTokens = 0;
  let finish: Extract<GenerationEvent, { type: 'finish' }> | undefined;
  try {
    for await (const event of started.events) {
      ctx.log.token();
      text += event.text;
      if (event.type === 'token') completionTokens++;
      else finish = event;
    }
  } finally {
    // After a failure or an abort: release the admission and charge what was generated.
    if (!finish) {
      ctx.log.set({ completionTokens });
      await started.finish({ completionTokens });
    }
  }
  if (!finish) throw new ApiError(500, 'generation ended without a finish event');
  const costMicros = await started.finish(finish.usage);
  ctx.log.set({ ...usageFields(finish.usage), finishReason: finish.finishReason, costMicros });
  ctx.log.setCompletion(text);
  return { text, finishReason: finish.finishReason, usage: finish.usage, costMicros };
}

function completeBody(shape: ResponseShape, text: string, finishReason: FinishReason, usage: Usage): object {
  if (shape.endpoint === 'chat') return chatCompletion({ ...shape, content: text, finishReason, usage });
  if (shape.endpoint === 'completions') return textCompletion({ ...shape, text, finishReason, usage });
  return { id: shape.id, object: 'generation', created: shape.created, model: shape.model, text, finish_reason: finishReason, usage: usageBody(usage) };
}

/** The backend's own token counts (an upstream's prompt count is exact only here, not in `prepare`). */
function usageFields(usage: Usage) {
  return { promptTokens: usage.promptTokens, completionTokens: usage.completionTokens };
}

function usageBody(usage: Usage) {
  return { prompt_tokens: usage.promptTokens, completion_tokens: usage.completionTokens, total_tokens: usage.promptTokens + usage.completionTokens };
}

/**
 * The SSE events of a streamed response, in OpenAI's order. The generation is settled before the
 * usage chunk (which then carries the cost) or, after an abort or failure, when the stream ends;
 * the request is logged when the stream ends.
 */
async function* streamEvents(
  shape: ResponseShape,
  started: StartedGeneration,
  signal: AbortSignal,
  includeUsage: boolean,
  ctx: RequestContext,
): AsyncGenerator<object> {
  const chunk = (delta: { role?: 'assistant'; content?: string }, finishReason: FinishReason | null = null): object => {
    // With include_usage, OpenAI sends `usage: null` on every chunk but the last.
    const usage = includeUsage ? null : undefined;
    if (shape.endpoint === 'chat') return chatCompletionChunk({ ...shape, delta, finishReason, usage });
    if (shape.endpoint === 'completions') return textCompletionChunk({ ...shape, text: delta.content ?? '', finishReason, usage });
    return { id: shape.id, object: 'generation.chunk', created: shape.created, model: shape.model, text: delta.content ?? '', finish_reason: finishReason };
  };
  let status = 200;
  let completion = '';
  let completionTokens = 0;
  try {
    if (shape.endpoint === 'chat') yield chunk({ role: 'assistant', content: '' });
    let finish: Extract<GenerationEvent, { type: 'finish' }> | undefined;
    for await (const event of started.events) {
      ctx.log.token();
      completion += event.text;
      if (event.type === 'token') completionTokens++;
      else finish = event;
      if (event.text) yield chunk({ content: event.text });
    }
    if (finish) {
      // Settled once the backend's events have ended, before the last chunks: they carry the cost.
      const costMicros = await started.finish(finish.usage);
      ctx.log.set({ ...usageFields(finish.usage), finishReason: finish.finishReason, costMicros });
      yield chunk({}, finish.finishReason);
      if (includeUsage) yield usageChunk(shape, finish.usage, costMicros);
    }
  } catch (error) {
    status = signal.aborted ? 499 : toApiError(error).status;
    if (status >= 500) ctx.log.set({ error: describe(error) });
    throw error;
  } finally {
    // Also runs when the client disconnects and the stream is cancelled mid-way.
    if (signal.aborted) status = 499;
    if (status !== 200) ctx.log.set({ completionTokens });
    await started.finish({ completionTokens });
    ctx.log.setCompletion(completion);
    ctx.log.finish(status, ctx.started);
  }
}

/** The last chunk; its usage also carries aigw's cost of the request (`cost_usd`), as headers are long gone. */
function usageChunk(shape: ResponseShape, usage: Usage, costMicros: number): object {
  const withCost = (chunk: { usage?: object | null }) => ({ ...chunk, usage: { ...chunk.usage, cost_usd: formatUsd(costMicros) } });
  if (shape.endpoint === 'chat') return withCost(chatCompletionChunk({ ...shape, usage }));
  if (shape.endpoint === 'completions') return withCost(textCompletionChunk({ ...shape, usage }));
  return { id: shape.id, object: 'generation.chunk', created: shape.created, model: shape.model, usage: { ...usageBody(usage), cost_usd: formatUsd(costMicros) } };
}

function isEventStream(response: Response): boolean {
  return response.headers.get('content-type')?.startsWith('text/event-stream') ?? false;
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
