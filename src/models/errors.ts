export type ModelPackageErrorCode =
  | 'manifest_missing'
  | 'manifest_invalid'
  | 'file_missing'
  | 'size_mismatch'
  | 'hash_mismatch'
  | 'unknown_layout'
  | 'onnx_missing'
  | 'config_missing';

/** A model package that can't be packed, read or trusted; the message names the file and the fix. */
export class ModelPackageError extends Error {
  readonly code: ModelPackageErrorCode;
  /** The package-relative file the error is about, when there is one. */
  readonly file?: string;

  constructor(code: ModelPackageErrorCode, message: string, options?: { file?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ModelPackageError';
    this.code = code;
    this.file = options?.file;
  }
}

export type GgufImportErrorCode =
  | 'invalid_gguf'
  | 'unsupported_architecture'
  | 'unsupported_tensor_type'
  | 'unsupported_tokenizer'
  | 'unsupported_feature';

/** A GGUF file aigw can't turn into a model package; the message names what is unsupported. */
export class GgufImportError extends Error {
  readonly code: GgufImportErrorCode;

  constructor(code: GgufImportErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GgufImportError';
    this.code = code;
  }
}
