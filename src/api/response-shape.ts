// The objects a generating endpoint answers with, whole or as stream chunks, for each of the
// three endpoints (chat, legacy completions, aigw's /v1/generate); cost goes in as aigw's extra.
import { formatUsd } from '../admission/index.js';
import type { FinishReason, Usage } from '../engine/index.js';
import type { Endpoint } from './generation-request.js';
import { chatCompletion, chatCompletionChunk, textCompletion, textCompletionChunk } from './responses.js';

/** What every object of one response shares. */
export interface ResponseShape {
  endpoint: Endpoint;
  id: string;
  created: number;
  model: string;
}

export function completeBody(shape: ResponseShape, text: string, finishReason: FinishReason, usage: Usage): object {
  if (shape.endpoint === 'chat') return chatCompletion({ ...shape, content: text, finishReason, usage });
  if (shape.endpoint === 'completions') return textCompletion({ ...shape, text, finishReason, usage });
  return { id: shape.id, object: 'generation', created: shape.created, model: shape.model, text, finish_reason: finishReason, usage: usageBody(usage) };
}

/** One stream chunk; with include_usage, OpenAI sends `usage: null` on every chunk but the last. */
export function streamChunk(
  shape: ResponseShape,
  includeUsage: boolean,
  delta: { role?: 'assistant'; content?: string },
  finishReason: FinishReason | null = null,
): object {
  const usage = includeUsage ? null : undefined;
  if (shape.endpoint === 'chat') return chatCompletionChunk({ ...shape, delta, finishReason, usage });
  if (shape.endpoint === 'completions') return textCompletionChunk({ ...shape, text: delta.content ?? '', finishReason, usage });
  return { id: shape.id, object: 'generation.chunk', created: shape.created, model: shape.model, text: delta.content ?? '', finish_reason: finishReason };
}

/** The last chunk; its usage also carries aigw's cost of the request (`cost_usd`), as headers are long gone. */
export function usageChunk(shape: ResponseShape, usage: Usage, costMicros: number): object {
  const withCost = (chunk: { usage?: object | null }) => ({ ...chunk, usage: { ...chunk.usage, cost_usd: formatUsd(costMicros) } });
  if (shape.endpoint === 'chat') return withCost(chatCompletionChunk({ ...shape, usage }));
  if (shape.endpoint === 'completions') return withCost(textCompletionChunk({ ...shape, usage }));
  return { id: shape.id, object: 'generation.chunk', created: shape.created, model: shape.model, usage: { ...usageBody(usage), cost_usd: formatUsd(costMicros) } };
}

function usageBody(usage: Usage) {
  return { prompt_tokens: usage.promptTokens, completion_tokens: usage.completionTokens, total_tokens: usage.promptTokens + usage.completionTokens };
}
