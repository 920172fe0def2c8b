// Lambda layers: onnxruntime-node with only the native binary for one architecture, built from
// the installed npm package into layers/onnxruntime/build/<arch>/ (see build-onnxruntime-layer.ts).
export {
  buildOnnxruntimeLayer,
  defaultLayerDir,
  LayerBuildError,
  nodeArch,
  type LayerArchitecture,
  type LayerBuildOptions,
  type LayerBuildResult,
} from './build-onnxruntime-layer.js';
