// api: the OpenAI-compatible edge: request schemas (zod), error shapes and the one mapping of
// typed errors to statuses, response objects, and server-sent event framing. Web-standard only.
export {
  ApiError,
  clientClosedRequest,
  errorBody,
  errorResponse,
  invalidApiKey,
  invalidRequest,
  malformedJson,
  methodNotAllowed,
  missingApiKey,
  modelNotFound,
  notFound,
  payloadTooLarge,
  toApiError,
  unsupportedMediaType,
  type ApiErrorOptions,
  type ErrorBody,
  type HeadersInit,
  type ToApiErrorOptions,
} from './errors.js';
export {
  MAX_STOP_SEQUENCES,
  parseChatCompletionRequest,
  parseCompletionRequest,
  parseGenerateRequest,
  type ApiChatMessage,
  type ApiChatRole,
  type ChatCompletionRequest,
  type CompletionRequest,
  type GenerateRequest,
  type SamplingFields,
} from './schemas.js';
export { decodePathSegment } from './request-target.js';
export { parseJsonBody } from './safe-json.js';
export { SSE_HEADERS, sseResponseBody, type SseOptions } from './sse.js';
export {
  ASSISTANT_ROLE_DELTA,
  chatCompletion,
  chatCompletionChunk,
  modelList,
  modelObject,
  newCompletionId,
  textCompletion,
  textCompletionChunk,
  usageObject,
  type ChatCompletionChunkObject,
  type ChatCompletionObject,
  type ChatDelta,
  type CompletionMeta,
  type ModelListObject,
  type ModelObject,
  type StreamChunkUsage,
  type TextCompletionChunkObject,
  type TextCompletionObject,
  type UsageObject,
} from './responses.js';
