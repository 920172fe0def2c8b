import type { ModelPrice } from '../admission/pricing.js';
import { EngineError, generate, planGeneration, type GenerationEvent, type GenerationOptions, type LoadedModel } from '../engine/index.js';
import type { GenerationInput, GenerationParams, ModelBackend, PreparedGeneration } from './model-backend.js';
import { Turnstile } from './turnstile.js';

export interface EngineBackendOptions {
  /** Completion tokens when a request sets none (cut to what the context has left). */
  defaultMaxTokens?: number;
  /** Sequences decoded at once ([performance] batch_size); later requests wait their turn. */
  batchSize?: number;
  /** The exact version id; defaults to `<id>@<the package's version>`. */
  version?: string;
  /** Overrides the manifest's price (integer micro-dollars per million tokens). */
  price?: ModelPrice;
}

/** Serves a model loaded in this process: the local default, and what a model function runs. */
export function engineBackend(model: LoadedModel, id = model.manifest.name, options: EngineBackendOptions = {}): ModelBackend {
  const created = Math.floor(Date.now() / 1000);
  const turnstile = new Turnstile(options.batchSize ?? 1);
  return {
    id,
    version: options.version ?? `${id}@${model.manifest.version}`,
    price: options.price ?? model.manifest.price,
    created,
    ownedBy: 'aigw',
    contextLength: model.manifest.contextLength,
    continuesChat: true,
    async prepare(input: GenerationInput, params: GenerationParams): Promise<PreparedGeneration> {
      const promptIds = await promptIdsOf(model, input, params.maxTokens);
      // Without max_tokens, the configured default, cut to what the context has left.
      const room = model.manifest.contextLength - promptIds.length;
      const requested = params.maxTokens ?? (options.defaultMaxTokens && room > 0 ? Math.min(options.defaultMaxTokens, room) : undefined);
      // Throws context_length_exceeded and parameter errors here, before anything is streamed.
      const { maxTokens } = planGeneration(model, promptIds.length, { ...params, maxTokens: requested });
      return {
        promptTokens: promptIds.length,
        maxTokens,
        run: (signal) => generateInTurn(turnstile, model, promptIds, { ...params, maxTokens, signal }),
      };
    },
  };
}

/**
 * A partial reply is continued by templating the messages before it with the assistant's header
 * and appending the partial text as plain tokens, without the end-of-turn marker.
 */
async function promptIdsOf(model: LoadedModel, input: GenerationInput, completionTokens: number | undefined): Promise<number[]> {
  if (input.kind === 'text' || !input.continueFinalMessage) return model.encodePrompt(input, completionTokens);
  const partial = input.messages.at(-1);
  if (partial?.role !== 'assistant') {
    throw new EngineError('invalid_generation_params', 'continue_final_message needs the last message to be the assistant\'s');
  }
  // The partial reply goes on as plain tokens: no special tokens (a BOS) in the middle of the prompt.
  const before = await model.encodePrompt({ kind: 'chat', messages: input.messages.slice(0, -1) }, completionTokens);
  return [...before, ...(await model.tokenizer.encodeYielding(partial.content))];
}

async function* generateInTurn(
  turnstile: Turnstile,
  model: LoadedModel,
  promptIds: number[],
  options: GenerationOptions & { signal: AbortSignal },
): AsyncGenerator<GenerationEvent> {
  const leave = await turnstile.enter(options.signal);
  try {
    yield* generate(model, promptIds, options);
  } finally {
    leave();
  }
}
