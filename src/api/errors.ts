import { EngineError } from '../engine/errors.js';
import { SamplingParamError, type SamplingParams } from '../engine/sampler.js';
import { StopSequenceError } from '../engine/stop-sequences.js';
import { TokenizerLoadError } from '../engine/tokenizer.js';
import { ChatTemplateError } from '../engine/chat-template.js';
import { ModelPackageError } from '../models/errors.js';
import { AdmissionRejectedError, AdmissionUnavailableError, UnknownPlanError } from '../admission/index.js';
import { CacheHeaderError } from '../cache/errors.js';
// The files, not routing/index.js: its upstream models import this module back.
import { AliasStoreUnavailableError } from '../routing/alias-store.js';
import { AliasTargetMissingError } from '../routing/model-resolver.js';
import { RoutingError } from '../routing/routing-errors.js';
import { BackendError } from '../backends/errors.js';
import { GuardrailBlockedError } from '../guardrails/guarded-backend.js';
import { rateLimitHeaders } from './rate-limit-headers.js';

export interface ApiErrorOptions {
  type?: string;
  code?: string | null;
  param?: string | null;
  headers?: Record<string, string>;
}

/** The body of every error response, exactly as OpenAI sends it. */
export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** An error the client may see: status, OpenAI error fields and extra response headers. */
export class ApiError extends Error {
  readonly status: number;
  readonly type: string;
  readonly code: string | null;
  readonly param: string | null;
  readonly headers: Record<string, string>;

  constructor(status: number, message: string, opts: ApiErrorOptions = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.type = opts.type ?? defaultErrorType(status);
    this.code = opts.code ?? null;
    this.param = opts.param ?? null;
    this.headers = opts.headers ?? {};
  }
}

/**
 * OpenAI reports client errors, 401s included, as `invalid_request_error`; rate limits carry
 * the limited dimension (`requests`, `tokens`) and admission passes its own.
 */
function defaultErrorType(status: number): string {
  if (status === 429) return 'requests';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

export function invalidRequest(message: string, param?: string | null, code?: string | null): ApiError {
  return new ApiError(400, message, { param, code });
}

/** Malformed JSON: OpenAI's wording, minus its help-centre link. */
export function malformedJson(): ApiError {
  return new ApiError(
    400,
    'We could not parse the JSON body of your request. The API expects a JSON payload, but what was sent was not valid JSON.',
  );
}

export function modelNotFound(model: string): ApiError {
  return new ApiError(404, `The model \`${model}\` does not exist or you do not have access to it.`, {
    code: 'model_not_found',
  });
}

/** Never echoes the key: it may be a real secret pasted into the wrong place. */
export function invalidApiKey(): ApiError {
  return new ApiError(401, 'Incorrect API key provided. Check the key you sent, or ask an operator for a new one.', {
    code: 'invalid_api_key',
  });
}

export function missingApiKey(): ApiError {
  return new ApiError(
    401,
    "You didn't provide an API key. Send it in an Authorization header using Bearer auth " +
      '(i.e. Authorization: Bearer YOUR_KEY) or in an x-api-key header.',
  );
}

export function payloadTooLarge(limitBytes: number): ApiError {
  return new ApiError(413, `The request body is too large: the limit is ${limitBytes} bytes.`, {
    code: 'request_too_large',
  });
}

export function unsupportedMediaType(): ApiError {
  return new ApiError(415, "Unsupported content type: send the body as JSON with 'Content-Type: application/json'.", {
    code: 'unsupported_media_type',
  });
}

/** OpenAI's wording for an unknown route: `Invalid URL (POST /v1/foo)`. */
export function notFound(path: string, method?: string): ApiError {
  return new ApiError(404, `Invalid URL (${method ? `${method} ` : ''}${path})`);
}

export function methodNotAllowed(method?: string, path?: string, allow?: readonly string[]): ApiError {
  const target = method && path ? ` (${method} ${path})` : '';
  return new ApiError(405, `Invalid method for URL${target}`, {
    headers: allow && allow.length > 0 ? { allow: allow.join(', ') } : undefined,
  });
}

/** nginx's 499: the client went away (mid-upload or mid-answer); logged, never seen by anyone. */
export function clientClosedRequest(): ApiError {
  return new ApiError(499, 'The client closed the request before the response was complete.', {
    code: 'client_closed_request',
  });
}

export function errorBody(error: ApiError): ErrorBody {
  return { error: { message: error.message, type: error.type, param: error.param, code: error.code } };
}

/** What `new Headers()` accepts; the DOM lib's HeadersInit is not in this project's lib set. */
export type HeadersInit = ConstructorParameters<typeof Headers>[0];

export function errorResponse(error: ApiError, headers?: HeadersInit): Response {
  const merged = new Headers(headers);
  for (const [name, value] of Object.entries(error.headers)) merged.set(name, value);
  merged.set('content-type', 'application/json');
  return new Response(JSON.stringify(errorBody(error)), { status: error.status, headers: merged });
}

const OPENAI_SAMPLING_PARAM: Record<keyof SamplingParams, string> = {
  temperature: 'temperature',
  topP: 'top_p',
  topK: 'top_k',
  seed: 'seed',
  presencePenalty: 'presence_penalty',
  frequencyPenalty: 'frequency_penalty',
  repetitionPenalty: 'repetition_penalty',
};

const GENERIC_SERVER_ERROR = 'The server had an error while processing your request. Sorry about that!';
const MODEL_UNAVAILABLE = 'The model is currently unavailable. Please try again later.';

export interface ToApiErrorOptions {
  /** The request field holding the prompt, named in context-length errors. */
  promptParam?: 'messages' | 'prompt';
}

/**
 * Maps every typed error to what the client sees, once, at the API edge. Messages that could
 * name local paths or internals are replaced; the caller logs the original.
 */
export function toApiError(error: unknown, opts: ToApiErrorOptions = {}): ApiError {
  if (error instanceof ApiError) return error;
  const promptParam = opts.promptParam ?? 'messages';

  if (error instanceof AdmissionRejectedError) {
    const headers = { 'retry-after': String(error.retryAfterSeconds), ...rateLimitHeaders(error.rateLimits) };
    // OpenAI's two kinds of 429: a rate limit to wait out, or a quota that is used up.
    return error.quota
      ? new ApiError(429, error.message, { type: 'insufficient_quota', code: 'insufficient_quota', headers })
      : new ApiError(429, error.message, { type: 'requests', code: 'rate_limit_exceeded', headers });
  }
  if (error instanceof AdmissionUnavailableError) {
    return new ApiError(503, 'Limits cannot be checked right now. Please try again shortly.', {
      code: 'admission_unavailable',
      headers: { 'retry-after': '1' },
    });
  }
  if (error instanceof UnknownPlanError) {
    return new ApiError(500, GENERIC_SERVER_ERROR);
  }
  if (error instanceof AliasStoreUnavailableError) {
    return new ApiError(503, 'Model aliases cannot be read right now. Please try again shortly.', { code: 'alias_unavailable', headers: { 'retry-after': '1' } });
  }
  if (error instanceof AliasTargetMissingError) {
    // The operator's mistake (an alias pointing at a version not deployed here), not the client's.
    return new ApiError(503, MODEL_UNAVAILABLE, { code: 'model_unavailable' });
  }
  if (error instanceof CacheHeaderError) {
    return new ApiError(400, error.message, { code: 'invalid_cache_header', param: error.header });
  }

  if (error instanceof GuardrailBlockedError) {
    return new ApiError(400, error.message, { code: 'content_filter', param: promptParam });
  }
  if (error instanceof RoutingError) {
    return new ApiError(error.status, error.message, {
      code: error.code,
      ...(error.code === 'model_unavailable' ? { headers: { 'retry-after': '1' } } : {}),
    });
  }

  if (error instanceof BackendError) return backendApiError(error);

  if (error instanceof EngineError) {
    switch (error.code) {
      case 'context_length_exceeded':
        return new ApiError(400, error.message, { code: 'context_length_exceeded', param: promptParam });
      case 'invalid_generation_params':
        return new ApiError(400, error.message, { code: 'invalid_generation_params' });
      case 'model_load_failed':
      case 'model_incompatible':
        return new ApiError(503, MODEL_UNAVAILABLE, { code: 'model_unavailable' });
      case 'generation_failed':
        return new ApiError(500, 'The model failed while generating the completion. Please try again.', {
          code: 'generation_failed',
        });
    }
  }
  if (error instanceof SamplingParamError) {
    const param = OPENAI_SAMPLING_PARAM[error.param];
    return new ApiError(400, error.message.replace(error.param, param), { param, code: 'invalid_value' });
  }
  if (error instanceof StopSequenceError) {
    return new ApiError(400, error.message, { param: 'stop', code: 'too_many_stop_sequences' });
  }
  // A template's raise_exception refuses the messages (roles must alternate...): the client's to fix.
  if (error instanceof ChatTemplateError && error.code === 'template_render_failed') {
    return new ApiError(400, error.message, { param: 'messages', code: 'invalid_messages' });
  }
  if (error instanceof ModelPackageError || error instanceof TokenizerLoadError || error instanceof ChatTemplateError) {
    return new ApiError(503, MODEL_UNAVAILABLE, { code: 'model_unavailable' });
  }
  if (isAbortError(error)) return clientClosedRequest();
  return new ApiError(500, GENERIC_SERVER_ERROR);
}

function backendApiError(error: BackendError): ApiError {
  switch (error.kind) {
    case 'context_length_exceeded':
      return new ApiError(400, error.message, { code: 'context_length_exceeded', param: error.detail.param ?? null });
    case 'upstream_unavailable':
      return new ApiError(503, error.message, { code: 'upstream_unavailable', headers: { 'retry-after': error.detail.retryAfterSeconds ?? '1' } });
    case 'upstream_refused': {
      const refusal = error.detail.refusal!;
      return new ApiError(refusal.status, error.message, { type: refusal.type, param: refusal.param, code: refusal.code });
    }
    case 'upstream_failed':
      return new ApiError(502, error.message, { code: 'upstream_error' });
  }
}

function isAbortError(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { name?: unknown }).name === 'AbortError'
  );
}
