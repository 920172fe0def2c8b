// model-builder: writes seeded Llama-family decoder ONNX models (Optimum or onnxruntime-genai layout,
// fp32/int8/int4) as complete aigw model packages, for the demo model, tests and benchmarks.
export {
  type LlamaLayerWeights,
  type LlamaShape,
  type LlamaWeightSource,
  type LlamaWeights,
  makeSeededLayer,
  makeSeededWeights,
  seededNormal,
  seededWeightSource,
  transpose,
  weightSourceOf,
} from './weights.js';
export {
  type ExportIoVariant,
  type GraphLayerWeights,
  type GraphWeightSource,
  type LinearWeight,
  type LlamaGraphOptions,
  LlamaGraphError,
  type ModelLayout,
  type ModelPrecision,
  rotaryTables,
  validateShape,
} from './llama-ops.js';
export { buildLlamaGraph } from './llama-graph.js';
export { type QuantBits, QUANT_BLOCK_SIZE, type QuantizedMatrix, QuantizeError, blobSize, dequantize, quantizeMatrix } from './quantize.js';
export { ExternalDataWriter, writeModel } from './onnx-writer.js';
export {
  type BuildModelPackageOptions,
  PackageExistsError,
  type TokenizerFilesWriter,
  buildModelPackage,
  onnxFileOf,
} from './package-writer.js';
export { PRESETS, type PresetName, isPresetName, presetShape } from './presets.js';
