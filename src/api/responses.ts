import type { FinishReason, Usage } from '../engine/index.js';

/** Fields every completion object and chunk of one response shares. */
export interface CompletionMeta {
  id: string;
  /** Unix seconds; every chunk of a stream carries the same value. */
  created: number;
  model: string;
}

export interface UsageObject {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface ChatCompletionObject extends CompletionMeta {
  object: 'chat.completion';
  choices: {
    index: number;
    message: { role: 'assistant'; content: string; refusal: null };
    logprobs: null;
    finish_reason: FinishReason;
  }[];
  usage: UsageObject;
}

export interface ChatDelta {
  role?: 'assistant';
  content?: string;
  refusal?: null;
}

export interface ChatCompletionChunkObject extends CompletionMeta {
  object: 'chat.completion.chunk';
  choices: { index: number; delta: ChatDelta; logprobs: null; finish_reason: FinishReason | null }[];
  usage?: UsageObject | null;
}

export interface TextCompletionObject extends CompletionMeta {
  object: 'text_completion';
  choices: { text: string; index: number; logprobs: null; finish_reason: FinishReason }[];
  usage: UsageObject;
}

/** Streamed legacy completions reuse the `text_completion` object, choices without a finish yet. */
export interface TextCompletionChunkObject extends CompletionMeta {
  object: 'text_completion';
  choices: { text: string; index: number; logprobs: null; finish_reason: FinishReason | null }[];
  usage?: UsageObject | null;
}

export interface ModelObject {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

export interface ModelListObject {
  object: 'list';
  data: ModelObject[];
}

/** The delta of a stream's first chat chunk, as OpenAI sends it. */
export const ASSISTANT_ROLE_DELTA: Readonly<ChatDelta> = Object.freeze({ role: 'assistant', content: '', refusal: null });

export function usageObject(usage: Usage): UsageObject {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
  };
}

export function chatCompletion(input: CompletionMeta & { content: string; finishReason: FinishReason; usage: Usage }): ChatCompletionObject {
  return {
    id: input.id,
    object: 'chat.completion',
    created: input.created,
    model: input.model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: input.content, refusal: null },
        logprobs: null,
        finish_reason: input.finishReason,
      },
    ],
    usage: usageObject(input.usage),
  };
}

/**
 * Streamed chunks share one shape for three cases, chosen by `usage`:
 * - undefined: include_usage is off, the chunk has no `usage` key;
 * - null: include_usage is on, a content or finish chunk carries `usage: null`;
 * - a Usage: the final usage chunk, with `choices: []`.
 */
export interface StreamChunkUsage {
  usage?: Usage | null;
}

function withUsage<T extends object>(chunk: T, usage: Usage | null | undefined): T & { usage?: UsageObject | null } {
  if (usage === undefined) return chunk;
  return { ...chunk, usage: usage === null ? null : usageObject(usage) };
}

export function chatCompletionChunk(
  input: CompletionMeta & StreamChunkUsage & { delta?: ChatDelta; finishReason?: FinishReason | null },
): ChatCompletionChunkObject {
  const isUsageChunk = input.usage !== undefined && input.usage !== null;
  const chunk: ChatCompletionChunkObject = {
    id: input.id,
    object: 'chat.completion.chunk',
    created: input.created,
    model: input.model,
    choices: isUsageChunk
      ? []
      : [{ index: 0, delta: { ...(input.delta ?? {}) }, logprobs: null, finish_reason: input.finishReason ?? null }],
  };
  return withUsage(chunk, input.usage);
}

export function textCompletion(input: CompletionMeta & { text: string; finishReason: FinishReason; usage: Usage }): TextCompletionObject {
  return {
    id: input.id,
    object: 'text_completion',
    created: input.created,
    model: input.model,
    choices: [{ text: input.text, index: 0, logprobs: null, finish_reason: input.finishReason }],
    usage: usageObject(input.usage),
  };
}

/** A streamed legacy completion chunk; `usage` works as for chatCompletionChunk. */
export function textCompletionChunk(
  input: CompletionMeta & StreamChunkUsage & { text?: string; finishReason?: FinishReason | null },
): TextCompletionChunkObject {
  const isUsageChunk = input.usage !== undefined && input.usage !== null;
  const chunk: TextCompletionChunkObject = {
    id: input.id,
    object: 'text_completion',
    created: input.created,
    model: input.model,
    choices: isUsageChunk ? [] : [{ text: input.text ?? '', index: 0, logprobs: null, finish_reason: input.finishReason ?? null }],
  };
  return withUsage(chunk, input.usage);
}

export function modelObject(id: string, created: number, ownedBy: string): ModelObject {
  return { id, object: 'model', created, owned_by: ownedBy };
}

export function modelList(models: readonly ModelObject[]): ModelListObject {
  return { object: 'list', data: [...models] };
}

const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const ID_LENGTH = 29; // what OpenAI's own chatcmpl- ids carry after the prefix
// Bytes at or above the largest multiple of 62 are dropped so every character is equally likely.
const UNBIASED_LIMIT = 256 - (256 % ID_ALPHABET.length);

/** A random id such as `chatcmpl-AbC...`, from the Web Crypto random source. */
export function newCompletionId(prefix: 'chatcmpl' | 'cmpl'): string {
  let out = '';
  while (out.length < ID_LENGTH) {
    for (const byte of crypto.getRandomValues(new Uint8Array(ID_LENGTH * 2))) {
      if (byte < UNBIASED_LIMIT && out.length < ID_LENGTH) out += ID_ALPHABET[byte % ID_ALPHABET.length];
    }
  }
  return `${prefix}-${out}`;
}
