import { createDecoderState } from './decoder-state.js';
import { EngineError } from './errors.js';
import type { LoadedModel } from './model.js';
import { createSampler, validateSamplingParams, type SamplingParams } from './sampler.js';
import { StopSequenceMatcher } from './stop-sequences.js';
import { StreamingDetokenizer } from './streaming-detokenizer.js';

export const MAX_STOP_SEQUENCES = 4;

export interface GenerationOptions extends SamplingParams {
  /** Most tokens to generate; defaults to what is left of the context after the prompt. */
  maxTokens?: number;
  /** Up to four strings that end generation; they never appear in the output. */
  stop?: readonly string[];
  /** Aborting stops generation before the next decoder step. */
  signal?: AbortSignal;
  /** Keep generating past end-of-sequence tokens (benchmarks need a fixed length, as vLLM's ignore_eos). */
  ignoreEos?: boolean;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

/** 'content_filter' is never the engine's: guardrails end a generation with it when a block rule matches. */
export type FinishReason = 'stop' | 'length' | 'content_filter';

export type GenerationEvent =
  /** One generated token; `text` is what may be shown now (possibly empty while UTF-8 or a stop string is pending). */
  | { type: 'token'; tokenId: number; text: string }
  /** The last event: why generation ended, trailing text held back until now, and the token counts. */
  | { type: 'finish'; finishReason: FinishReason; text: string; usage: Usage };

/**
 * Throws before any onnxruntime work when the request cannot fit, so callers can reject it
 * (and admission can price it) without touching the model.
 */
export function planGeneration(model: LoadedModel, promptTokens: number, options: GenerationOptions): { maxTokens: number } {
  const context = model.manifest.contextLength;
  if (promptTokens === 0) throw new EngineError('invalid_generation_params', 'the prompt is empty');
  if (promptTokens >= context) {
    throw new EngineError(
      'context_length_exceeded',
      `This model's maximum context length is ${context} tokens, but the prompt has ${promptTokens} tokens.`,
    );
  }
  const maxTokens = options.maxTokens ?? context - promptTokens;
  if (!Number.isInteger(maxTokens) || maxTokens < 1) {
    throw new EngineError('invalid_generation_params', `max_tokens must be a positive integer, got ${options.maxTokens}`);
  }
  if (promptTokens + maxTokens > context) {
    throw new EngineError(
      'context_length_exceeded',
      `This model's maximum context length is ${context} tokens. However, you requested ${promptTokens + maxTokens} tokens ` +
        `(${promptTokens} in the prompt, ${maxTokens} in the completion). Please reduce the prompt or max_tokens.`,
    );
  }
  if ((options.stop?.length ?? 0) > MAX_STOP_SEQUENCES) {
    throw new EngineError('invalid_generation_params', `at most ${MAX_STOP_SEQUENCES} stop sequences are allowed`);
  }
  validateSamplingParams(options);
  return { maxTokens };
}

/** Prefill, then decode token by token with the KV cache, as an async iterator of events. */
export async function* generate(
  model: LoadedModel,
  promptIds: readonly number[],
  options: GenerationOptions = {},
): AsyncGenerator<GenerationEvent, void, undefined> {
  const { maxTokens } = planGeneration(model, promptIds.length, options);
  const sampler = createSampler(options, model.tokenizer.vocabSize);
  const detokenizer = new StreamingDetokenizer(model.tokenizer);
  const stopMatcher = new StopSequenceMatcher([...(options.stop ?? [])].filter((s) => s.length > 0));
  const state = createDecoderState(model.session, model.io, promptIds.length + maxTokens);
  const generatedIds: number[] = [];
  const usage = (): Usage => ({ promptTokens: promptIds.length, completionTokens: generatedIds.length });

  options.signal?.throwIfAborted();
  let logits = await state.step(promptIds);
  for (;;) {
    options.signal?.throwIfAborted();
    const tokenId = sampler.sample(logits, { promptIds: promptIds as number[], generatedIds });
    generatedIds.push(tokenId);

    if (!options.ignoreEos && model.eosTokenIds.has(tokenId)) {
      yield finish('stop', detokenizer, stopMatcher, usage());
      return;
    }
    const { emit, stopped } = stopMatcher.push(detokenizer.push(tokenId));
    yield { type: 'token', tokenId, text: emit };
    if (stopped) {
      yield { type: 'finish', finishReason: 'stop', text: '', usage: usage() };
      return;
    }
    if (generatedIds.length >= maxTokens) {
      yield finish('length', detokenizer, stopMatcher, usage());
      return;
    }
    logits = await state.step([tokenId]);
  }
}

/** Releases text held back for UTF-8 completeness or a possible stop string. */
function finish(
  reason: FinishReason,
  detokenizer: StreamingDetokenizer,
  stopMatcher: StopSequenceMatcher,
  usage: Usage,
): GenerationEvent {
  const { emit, stopped } = stopMatcher.push(detokenizer.flush());
  const text = stopped ? emit : emit + stopMatcher.flush();
  return { type: 'finish', finishReason: stopped ? 'stop' : reason, text, usage };
}
