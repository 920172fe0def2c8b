// `aigw models import <file.gguf>`: a GGUF file (llama.cpp, Ollama, LM Studio) becomes an aigw
// model package: the Llama graph writer of tools/model-builder fed with the file's own weights
// (gguf-weights), its tokenizer converted (gguf-tokenizer), configs written, then packed.
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { gguf } from '@huggingface/gguf';
import type { ModelLayout, ModelPrecision } from '../../tools/model-builder/llama-ops.js';
import { buildLlamaGraph } from '../../tools/model-builder/llama-graph.js';
import { ExternalDataWriter, writeModel } from '../../tools/model-builder/onnx-writer.js';
import type { LlamaShape } from '../../tools/model-builder/weights.js';
import { GgufImportError } from './errors.js';
import { ggmlTypeName } from './gguf-quants.js';
import { type GgufMetadata, convertGgufTokenizer } from './gguf-tokenizer.js';
import { GgufWeights, type WeightTreatment, treatmentOf } from './gguf-weights.js';
import type { ModelManifest } from './manifest.js';
import { packModelFolder } from './pack.js';
import { pathExists, writeJsonFile } from './package-files.js';

export const SUPPORTED_GGUF_ARCHITECTURES = ['llama', 'qwen2'] as const;
export const DEFAULT_IMPORT_ACCURACY_LEVEL = 4;

export interface GgufImportOptions {
  /** Package folder to create; must not exist. */
  outDir: string;
  name?: string;
  version?: string;
  /** What float (F32/F16/BF16) tensors become; quantized tensors keep their own bits. Default fp32. */
  floatPrecision?: ModelPrecision;
  /**
   * Default genai: GroupQueryAttention over one shared KV buffer, a third of the graph nodes of the
   * optimum layout's plain attention ops (growing cache), which decoding feels at 0.5B sizes.
   */
  layout?: ModelLayout;
  /**
   * MatMulNBits accuracy_level. Default 4: activations quantized to 8 bits in blocks along K, as
   * llama.cpp's own CPU kernels compute Q4_0/Q8_0 weights (vec_dot_q4_0_q8_0); about 3x faster
   * than 0 (fp32 compute) on this project's AVX2 machine (bench/gguf-peer.ts).
   */
  accuracyLevel?: number;
  priceMicrosPerMillion?: { input: number; output: number };
}

export interface GgufImportResult {
  manifest: ModelManifest;
  architecture: string;
  /** How many tensors of each GGUF type were repacked, requantized or kept float. */
  tensors: { type: string; count: number; treatment: WeightTreatment }[];
}

function positive(metadata: GgufMetadata, key: string, fallback?: number): number {
  const raw = metadata[key];
  const value = raw === undefined ? fallback : Number(raw);
  if (value === undefined || !Number.isFinite(value) || value <= 0) {
    throw new GgufImportError('invalid_gguf', `GGUF metadata ${key} is missing or not a positive number`);
  }
  return value;
}

/** The decoder shape from `<arch>.*` metadata; refuses the features the graph writer lacks, by name. */
function shapeOf(metadata: GgufMetadata, arch: string, vocabSize: number): LlamaShape {
  const experts = Number(metadata[`${arch}.expert_count`] ?? 0);
  if (experts > 0) throw new GgufImportError('unsupported_feature', `GGUF model is a mixture of experts (${arch}.expert_count=${experts}); not supported`);
  const scaling = metadata[`${arch}.rope.scaling.type`];
  if (scaling !== undefined && scaling !== 'none') {
    throw new GgufImportError('unsupported_feature', `GGUF rope scaling "${String(scaling)}" (${arch}.rope.scaling.type) is not supported`);
  }
  const hiddenSize = positive(metadata, `${arch}.embedding_length`);
  const numHeads = positive(metadata, `${arch}.attention.head_count`);
  const headDim = positive(metadata, `${arch}.attention.key_length`, hiddenSize / numHeads);
  const ropeDims = metadata[`${arch}.rope.dimension_count`];
  if (ropeDims !== undefined && Number(ropeDims) !== headDim) {
    throw new GgufImportError('unsupported_feature', `GGUF partial rotary (${arch}.rope.dimension_count=${String(ropeDims)} of head size ${headDim}) is not supported`);
  }
  return {
    hiddenSize,
    numLayers: positive(metadata, `${arch}.block_count`),
    numHeads,
    numKvHeads: positive(metadata, `${arch}.attention.head_count_kv`, numHeads),
    headDim,
    intermediateSize: positive(metadata, `${arch}.feed_forward_length`),
    vocabSize,
    contextLength: positive(metadata, `${arch}.context_length`),
    ropeTheta: positive(metadata, `${arch}.rope.freq_base`, 10000),
    rmsNormEps: positive(metadata, `${arch}.attention.layer_norm_rms_epsilon`, 1e-5),
  };
}

function configJson(arch: string, shape: LlamaShape, bos: number | undefined, eos: number[], tied: boolean): Record<string, unknown> {
  return {
    architectures: [arch === 'qwen2' ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'],
    model_type: arch,
    hidden_size: shape.hiddenSize,
    intermediate_size: shape.intermediateSize,
    num_attention_heads: shape.numHeads,
    num_key_value_heads: shape.numKvHeads,
    head_dim: shape.headDim,
    num_hidden_layers: shape.numLayers,
    vocab_size: shape.vocabSize,
    max_position_embeddings: shape.contextLength,
    rope_theta: shape.ropeTheta,
    rms_norm_eps: shape.rmsNormEps,
    hidden_act: 'silu',
    tie_word_embeddings: tied,
    bos_token_id: bos ?? null,
    eos_token_id: eos.length === 1 ? eos[0] : eos,
    use_cache: true,
  };
}

/** Reads a GGUF file and writes it as a model package (built beside outDir, then renamed in). */
export async function importGgufFile(file: string, opts: GgufImportOptions): Promise<GgufImportResult> {
  const outDir = path.resolve(opts.outDir);
  if (await pathExists(outDir)) throw new GgufImportError('invalid_gguf', `${outDir} already exists; remove it or import into another folder`);
  let parsed: Awaited<ReturnType<typeof gguf>>;
  try {
    parsed = await gguf(path.resolve(file), { allowLocalFile: true });
  } catch (error) {
    throw new GgufImportError('invalid_gguf', `${file} is not a readable GGUF file: ${(error as Error).message}`, { cause: error });
  }
  const metadata = parsed.metadata as unknown as GgufMetadata;
  const arch = String(metadata['general.architecture']);
  if (!(SUPPORTED_GGUF_ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new GgufImportError(
      'unsupported_architecture',
      `GGUF architecture "${arch}" is not supported; supported: llama (Llama 2/3, Mistral), qwen2 (Qwen2, Qwen2.5)`,
    );
  }
  const embedding = parsed.tensorInfos.find((t) => t.name === 'token_embd.weight');
  if (!embedding) throw new GgufImportError('invalid_gguf', `${file} has no token_embd.weight tensor`);
  // No output.weight: lm_head is the embedding table (Qwen2.5-0.5B, Llama 3.2 1B). A float table is
  // shared by the graph; a quantized one is gathered as blocks and also repacked as lm_head's
  // MatMulNBits (4-8x faster than a float lm_head over a large vocabulary, for a second copy of
  // the same small size).
  const tied = !parsed.tensorInfos.some((t) => t.name === 'output.weight');
  const shape: LlamaShape = {
    ...shapeOf(metadata, arch, Number(embedding.shape[1])),
    tieWordEmbeddings: tied && treatmentOf(embedding.dtype) === 'float',
  };
  const tokenizer = convertGgufTokenizer(metadata, shape.vocabSize);
  const weights = new GgufWeights(shape, { file: path.resolve(file), tensors: parsed.tensorInfos, dataOffset: parsed.tensorDataOffset }, arch === 'llama');

  await mkdir(path.dirname(outDir), { recursive: true });
  const tmpDir = `${outDir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  await mkdir(path.join(tmpDir, 'onnx'), { recursive: true });
  try {
    const layout = opts.layout ?? 'genai';
    const onnxFile = layout === 'genai' ? 'model.onnx' : 'onnx/model.onnx';
    const onnxPath = path.join(tmpDir, onnxFile);
    const dataName = `${path.basename(onnxPath)}${layout === 'genai' ? '.data' : '_data'}`;
    const external = new ExternalDataWriter(path.join(path.dirname(onnxPath), dataName), dataName);
    try {
      const graph = buildLlamaGraph(weights, { layout, precision: opts.floatPrecision ?? 'fp32', accuracyLevel: opts.accuracyLevel ?? DEFAULT_IMPORT_ACCURACY_LEVEL, lastTokenLogitsOnly: true }, external);
      await writeModel(onnxPath, graph);
    } finally {
      external.close();
      weights.close();
    }
    if (layout === 'genai') await rm(path.join(tmpDir, 'onnx'), { recursive: true });
    await writeJsonFile(path.join(tmpDir, 'tokenizer.json'), tokenizer.tokenizerJson);
    await writeJsonFile(path.join(tmpDir, 'tokenizer_config.json'), tokenizer.tokenizerConfig);
    await writeJsonFile(path.join(tmpDir, 'config.json'), configJson(arch, shape, tokenizer.bosTokenId, tokenizer.eosTokenIds, shape.tieWordEmbeddings ?? false));
    await writeJsonFile(path.join(tmpDir, 'generation_config.json'), {
      ...(tokenizer.bosTokenId === undefined ? {} : { bos_token_id: tokenizer.bosTokenId }),
      eos_token_id: tokenizer.eosTokenIds,
    });
    if (layout === 'genai') await writeJsonFile(path.join(tmpDir, 'genai_config.json'), genaiConfig(shape, tokenizer.bosTokenId, tokenizer.eosTokenIds));
    const manifest = await packModelFolder(tmpDir, {
      name: opts.name ?? String(metadata['general.name'] ?? path.basename(file, '.gguf')).toLowerCase().replace(/[^a-z0-9._-]+/g, '-'),
      version: opts.version,
      onnxFile,
      ...(opts.priceMicrosPerMillion ? { priceMicrosPerMillion: opts.priceMicrosPerMillion } : {}),
    });
    await rename(tmpDir, outDir);
    return { manifest, architecture: arch, tensors: tensorSummary(parsed.tensorInfos) };
  } finally {
    await rm(tmpDir, { recursive: true, force: true });
  }
}

function tensorSummary(tensors: { dtype: number; shape: bigint[] }[]): GgufImportResult['tensors'] {
  const counts = new Map<number, number>();
  for (const t of tensors) if (t.shape.length === 2) counts.set(t.dtype, (counts.get(t.dtype) ?? 0) + 1);
  return [...counts].map(([type, count]) => ({ type: ggmlTypeName(type), count, treatment: treatmentOf(type) }));
}

function genaiConfig(shape: LlamaShape, bos: number | undefined, eos: number[]): Record<string, unknown> {
  return {
    model: {
      ...(bos === undefined ? {} : { bos_token_id: bos }),
      context_length: shape.contextLength,
      decoder: {
        filename: 'model.onnx',
        head_size: shape.headDim,
        hidden_size: shape.hiddenSize,
        inputs: {
          input_ids: 'input_ids',
          attention_mask: 'attention_mask',
          past_key_names: 'past_key_values.%d.key',
          past_value_names: 'past_key_values.%d.value',
        },
        outputs: { logits: 'logits', present_key_names: 'present.%d.key', present_value_names: 'present.%d.value' },
        num_attention_heads: shape.numHeads,
        num_hidden_layers: shape.numLayers,
        num_key_value_heads: shape.numKvHeads,
      },
      eos_token_id: eos,
      pad_token_id: eos[0],
      type: 'llama',
      vocab_size: shape.vocabSize,
    },
    search: { do_sample: false, max_length: shape.contextLength, past_present_share_buffer: true },
  };
}
