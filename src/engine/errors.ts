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
