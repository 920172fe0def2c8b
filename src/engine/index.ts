// engine: ONNX inference for decoder-only model packages (tokenizer, chat template, KV cache,
// sampler, generation loop). Knows nothing of HTTP, API keys or DynamoDB.
export { EngineError, UnsupportedModelError, type EngineErrorCode, type UnsupportedModelFeature } from './errors.js';
export { loadModel, unloadAllModels, type LoadedModel, type LoadModelOptions } from './model.js';
export {
  generate,
  planGeneration,
  MAX_STOP_SEQUENCES,
  type GenerationEvent,
  type GenerationOptions,
  type FinishReason,
  type Usage,
} from './generate.js';
export type { ChatMessage } from './chat-template.js';
export type { SamplingParams } from './sampler.js';
export { COMPARISON_PROMPTS, compareModels, type ComparisonOptions, type ModelComparison } from './model-comparison.js';
export {
  DEFAULT_MIN_AGREEMENT,
  OptimizationRefusedError,
  optimizeModel,
  type OptimizeModelOptions,
  type OptimizeModelResult,
} from './model-optimization.js';
