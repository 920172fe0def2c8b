import { generate, planGeneration, type LoadedModel } from '../engine/index.js';
import type { GenerationInput, GenerationParams, ModelBackend, PreparedGeneration } from './model-backend.js';

/** Serves a model loaded in this process: the local default, and what a model function runs. */
export function engineBackend(model: LoadedModel, id = model.manifest.name, options: { defaultMaxTokens?: number } = {}): ModelBackend {
  const created = Math.floor(Date.now() / 1000);
  return {
    id,
    created,
    ownedBy: 'aigw',
    contextLength: model.manifest.contextLength,
    async prepare(input: GenerationInput, params: GenerationParams): Promise<PreparedGeneration> {
      const promptIds = input.kind === 'chat' ? model.encodeChat(input.messages) : model.encodeText(input.prompt);
      // Without max_tokens, the configured default, cut to what the context has left.
      const room = model.manifest.contextLength - promptIds.length;
      const requested = params.maxTokens ?? (options.defaultMaxTokens && room > 0 ? Math.min(options.defaultMaxTokens, room) : undefined);
      // Throws context_length_exceeded and parameter errors here, before anything is streamed.
      const { maxTokens } = planGeneration(model, promptIds.length, { ...params, maxTokens: requested });
      return {
        promptTokens: promptIds.length,
        maxTokens,
        run: (signal) => generate(model, promptIds, { ...params, maxTokens, signal }),
      };
    },
  };
}
