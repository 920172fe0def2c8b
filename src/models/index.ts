// Model packages: the manifest (files, sizes, SHA-256, tokens, price), packing a downloaded
// Optimum or onnxruntime-genai folder into a package, and verifying a package once per download.
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
