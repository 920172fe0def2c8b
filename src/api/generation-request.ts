// The three generating endpoints' bodies, validated and brought to one shape a backend runs:
// chat messages or a text prompt, sampling parameters, and whether to stream.
import type { GenerationInput, GenerationParams } from '../backends/model-backend.js';
import {
  parseChatCompletionRequest,
  parseCompletionRequest,
  parseGenerateRequest,
  type ChatCompletionRequest,
  type CompletionRequest,
  type GenerateRequest,
} from './schemas.js';

export type Endpoint = 'chat' | 'completions' | 'generate';

export function endpointOf(pathname: string): Endpoint | undefined {
  if (pathname === '/v1/chat/completions') return 'chat';
  if (pathname === '/v1/completions') return 'completions';
  if (pathname === '/v1/generate') return 'generate';
  return undefined;
}

export interface GenerationRequestBody {
  model: string;
  /** OpenAI's `user` field: with an alias, it keeps one end user on one version. */
  user?: string;
  input: GenerationInput;
  params: GenerationParams;
  stream: boolean;
  includeUsage: boolean;
}

/** Validates an endpoint's body (throws the API's 400s); /v1/generate falls back to `defaultModel`. */
export function parseGenerationRequest(endpoint: Endpoint, body: unknown, defaultModel: string): GenerationRequestBody {
  if (endpoint === 'chat') {
    const req: ChatCompletionRequest = parseChatCompletionRequest(body);
    const input: GenerationInput = { kind: 'chat', messages: req.messages, ...(req.continueFinalMessage ? { continueFinalMessage: true } : {}) };
    return { model: req.model, user: req.user, input, params: paramsOf(req), stream: req.stream, includeUsage: req.includeUsage };
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
