/** Why a generation or a model load failed; mapped to an HTTP status once, at the API edge. */
export type EngineErrorCode =
  | 'model_load_failed' // the ONNX file is missing, truncated or not a decoder we can drive
  | 'model_incompatible' // inputs/outputs of the graph don't match either supported layout
  | 'context_length_exceeded' // prompt (+ max_tokens) does not fit the model's context
  | 'invalid_generation_params'
  | 'generation_failed'; // onnxruntime failed mid-run

export class EngineError extends Error {
  readonly code: EngineErrorCode;

  constructor(code: EngineErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EngineError';
    this.code = code;
  }
}

/** Graph features that belong to model families aigw does not drive, named in the error. */
export type UnsupportedModelFeature = 'combined_past_cache' | 'recurrent_state' | 'inputs_embeds_only';

/** A decoder whose inputs mark it as out of scope; `feature` says which part, the message what to do. */
export class UnsupportedModelError extends EngineError {
  readonly feature: UnsupportedModelFeature;

  constructor(feature: UnsupportedModelFeature, message: string) {
    super('model_incompatible', message);
    this.name = 'UnsupportedModelError';
    this.feature = feature;
  }
}
