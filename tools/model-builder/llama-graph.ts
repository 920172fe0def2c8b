// The GraphProto of a Llama-family decoder in one of two public export layouts: Hugging Face
// Optimum / transformers.js (plain ONNX ops, growing KV cache) or onnxruntime-genai (GroupQueryAttention).
import { buildGenai } from './genai-graph.js';
import { LlamaGraph, type LlamaGraphOptions, type GraphWeightSource, validateShape } from './llama-ops.js';
import type { ExternalDataWriter, GraphProto } from './onnx-writer.js';
import { buildOptimum } from './optimum-graph.js';

/**
 * Builds the decoder graph, streaming every large initializer to `external` as it goes (one layer of
 * weights in memory at a time).
 */
export function buildLlamaGraph(weights: GraphWeightSource, options: LlamaGraphOptions, external: ExternalDataWriter): GraphProto {
  validateShape(weights.shape);
  const lg = new LlamaGraph(weights, options, external);
  if (options.layout === 'optimum') buildOptimum(lg, weights.shape, weights);
  else buildGenai(lg, weights.shape, weights);
  return lg.g.toGraph();
}
