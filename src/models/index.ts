// Model packages: the manifest (files, sizes, SHA-256, tokens, price), packing and verifying a
// package folder, and the S3 model store (push, list, fetch to a local cache with ranged GETs). GGUF
// import (gguf-import.ts) and Hub pulls are imported by path: the Lambda bundles never carry them.
export { ModelPackageError, type ModelPackageErrorCode } from './errors.js';
export {
  MANIFEST_FILE,
  manifestFileSchema,
  manifestSha256,
  modelManifestSchema,
  parseManifest,
  readManifest,
  writeManifest,
  type ManifestFile,
  type ModelManifest,
} from './manifest.js';
export {
  CONFIG_FILE,
  GENAI_CONFIG_FILE,
  PRECISION_PREFERENCE,
  chooseOnnxCandidate,
  detectLayout,
  listOptimumOnnxCandidates,
  precisionOfOnnxName,
  type ModelLayout,
  type OnnxCandidate,
} from './layout.js';
export { ONNX_DECODE_LIMIT_BYTES, findExternalDataFiles } from './external-data.js';
export { packModelFolder, type PackOptions } from './pack.js';
export { VERIFIED_STAMP_FILE, verifyModelFolder, type VerifyOptions } from './verify.js';
export { sha256File } from './file-hash.js';
export {
  MODEL_STORE_PREFIX,
  ModelStoreError,
  assertModelId,
  createModelStoreClient,
  listModelVersions,
  modelObjectKey,
  modelPackagePrefix,
  type ModelStoreClientOptions,
  type ModelStoreErrorCode,
  type StoredModelVersion,
} from './s3-store.js';
export { UPLOAD_PART_SIZE, pushModelPackage, type PushOptions, type PushProgress, type PushResult } from './model-upload.js';
export {
  DEFAULT_MODEL_CACHE_DIR,
  DOWNLOAD_CONCURRENCY,
  DOWNLOAD_PART_SIZE,
  fetchModelPackage,
  type FetchOptions,
} from './model-download.js';
export { GgufImportError, type GgufImportErrorCode } from './errors.js';
export { type QuantBits, type QuantizedMatrix, QUANT_BLOCK_SIZE, dequantize, quantizeMatrix, quantizeRows } from './block-quantize.js';
export {
  OptimizeError,
  optimizeGraph,
  optimizeModelPackage,
  type OptimizeChanges,
  type OptimizeGraphOptions,
  type OptimizePackageOptions,
} from './optimize.js';
