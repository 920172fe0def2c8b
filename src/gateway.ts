// The gateway: one function from a Web-standard Request to a Response, the same on a laptop
// and in Lambda. authenticate → validate → resolve model → prepare → generate → stream → log.
import { randomBytes } from 'node:crypto';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { AdmissionRejectedError, AdmissionUnavailableError, type ApiKeyRecord } from './admission/index.js';
import {
  decodePathSegment,
  errorResponse,
  invalidApiKey,
  methodNotAllowed,
  missingApiKey,
  modelList,
  modelNotFound,
  modelObject,
  newCompletionId,
  notFound,
  toApiError,
} from './api/index.js';
import { originAllowed, originNotAllowed, preflightResponse, withCorsHeaders } from './api/cors.js';
import { endpointOf, parseGenerationRequest, type Endpoint } from './api/generation-request.js';
import { rateLimitHeaders } from './api/rate-limit-headers.js';
import { readJsonBody } from './api/request-body.js';
import type { ResponseShape } from './api/response-shape.js';
import type { ModelBackend, PrepareContext } from './backends/model-backend.js';
import { CACHE_STATUS_HEADER } from './cache/index.js';
import { startGeneration, type AdmissionSetup, type CacheSetup } from './generation-flow.js';
import { stickinessKey, type ModelResolver } from './routing/index.js';
import { MODEL_VERSION_HEADER, describeError as describe, streamedResponse, wholeResponse } from './generation-response.js';
import { guardedBackend, guardrailOutcome, type GuardrailPolicy } from './guardrails/index.js';
import {
  emitBudgetThresholdCrossed,
  emitModelVersionMetrics,
  emitRequestMetrics,
  requestLog,
  type RequestLine,
  type RequestLogger,
} from './telemetry/index.js';

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
  /** Guardrail rules for each key (gateway-wide, per plan, per key); absent: none. */
  guardrails?: GuardrailPolicy;
  /** Told of every finished request with its log line (the audit trail, OpenTelemetry); run after the response. */
  onRequestFinished?: readonly ((line: RequestLine) => Promise<unknown>)[];
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


export function createGateway(options: GatewayOptions): Gateway {
  return async (request, runtime = DETACHED) => {
    const ctx: RequestContext = {
      runtime,
      requestId: `req_${randomBytes(12).toString('hex')}`,
      started: performance.now(),
      log: requestLog(options.logger, options.logPrompts, (line) => {
        if (options.metrics) {
          emitRequestMetrics(options.metrics, line);
          emitModelVersionMetrics(options.metrics, line);
        }
        for (const observe of options.onRequestFinished ?? []) {
          runtime.waitUntil(observe(line).then(() => undefined, (error) => options.logger.info('warning', { requestId: line.requestId, warning: 'request observer failed', cause: describe(error) })));
        }
      }),
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

  if (isModels) return listModels(options, pathname, ctx);
  const body = await readJsonBody(request, options.maxRequestBytes);
  return generateResponse(options, endpoint!, body, request, ctx);
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
  if (key.logPrompts) ctx.log.allowPrompts();
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
async function resolveModel(options: GatewayOptions, model: string, request: Request | undefined, user: string | undefined, ctx: RequestContext): Promise<ModelBackend> {
  if (!options.aliases || !keyMayUse(ctx.key, model)) return resolveBackend(options, model, ctx.key);
  const resolved = await options.aliases.resolve(model, stickinessOf(request, user, ctx), options.backends);
  if (!resolved) throw modelNotFound(model);
  if (resolved.alias) logAlias(ctx, resolved.alias);
  return resolved.backend;
}

/** The request log names the alias, its revision and the role (stable or canary) that served. */
function logAlias(ctx: RequestContext, alias: { name: string; revision: number; role: string }): void {
  ctx.log.set({ alias: alias.name, aliasRevision: alias.revision, aliasRole: alias.role });
}

/** The same key (and session or user, when sent) lands on the same version while a canary runs. */
function stickinessOf(request: Request | undefined, user: string | undefined, ctx: RequestContext): string {
  return stickinessKey({ keyId: ctx.key?.keyId, session: request?.headers.get('x-aigw-session'), user });
}

/** A route's target through the alias of that name, for PrepareContext.resolveAlias. */
function routeTargetAlias(options: GatewayOptions, request: Request, user: string | undefined, ctx: RequestContext): PrepareContext['resolveAlias'] {
  const aliases = options.aliases;
  if (!aliases) return undefined;
  return async (name) => {
    const resolved = await aliases.resolve(name, stickinessOf(request, user, ctx), options.backends);
    if (!resolved?.alias) return undefined;
    logAlias(ctx, resolved.alias);
    return resolved.backend;
  };
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
  const id = decodePathSegment(pathname.slice('/v1/models/'.length));
  return Response.json(objectOf(id, await resolveModel(options, id, undefined, undefined, ctx)));
}

async function generateResponse(
  options: GatewayOptions,
  endpoint: Endpoint,
  body: unknown,
  request: Request,
  ctx: RequestContext,
): Promise<Response> {
  const req = parseGenerationRequest(endpoint, body, options.defaultModel);
  const resolved = await resolveModel(options, req.model, request, req.user, ctx);
  const guardrails = options.guardrails?.profileFor(ctx.key);
  const backend = guardrails ? guardedBackend(resolved, guardrails, guardrailOutcome((outcome) => ctx.log.set({ guardrails: outcome }), (input) => ctx.log.setPrompt(input))) : resolved;
  ctx.log.set({ model: backend.id, stream: req.stream });
  ctx.log.setPrompt(req.input);
  // A routed model reads the headers (x-aigw-route) and logs its decisions and fallbacks.
  const prepared = await backend.prepare(req.input, req.params, {
    headers: request.headers,
    report: (fields) => ctx.log.set(fields),
    resolveAlias: routeTargetAlias(options, request, req.user, ctx),
  });
  // A route picks its version per request; the response and the log name the one that serves.
  const version = prepared.version ?? backend.version;
  ctx.log.set({ promptTokens: prepared.promptTokens, modelVersion: version });

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
    ...(guardrails ? { cacheVariant: `guardrails.${guardrails.id}` } : {}),
    onBudgetCrossing: (crossing) => {
      // An audit event of its own (not part of the request line) and a metric that alarms.
      options.logger.info('budget_threshold_crossed', { requestId: ctx.requestId, keyId: ctx.key?.keyId, ...crossing });
      if (options.metrics) emitBudgetThresholdCrossed(options.metrics, crossing.percent);
    },
  });
  ctx.log.set({ cache: started.cacheStatus });
  const headers: Record<string, string> = { [CACHE_STATUS_HEADER]: started.cacheStatus, [MODEL_VERSION_HEADER]: version, ...rateLimitHeaders(started.rateLimits) };
  // Like OpenAI's dated snapshots: `model` names the exact version that served, never the alias.
  const shape: ResponseShape = {
    endpoint,
    id: newCompletionId(endpoint === 'completions' ? 'cmpl' : 'chatcmpl'),
    created: Math.floor(Date.now() / 1000),
    model: version,
  };
  const named = { shape, headers, servedBy: prepared.startedBy };
  if (!req.stream) return wholeResponse(named, started, ctx);
  return streamedResponse(named, started, { signal: request.signal, includeUsage: req.includeUsage }, ctx);
}

function isEventStream(response: Response): boolean {
  return response.headers.get('content-type')?.startsWith('text/event-stream') ?? false;
}
