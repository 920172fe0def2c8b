// Writes a complete aigw model package folder (ONNX decoder + external data, configs, tokenizer,
// manifest) for a seeded Llama-family model, atomically: built beside the target, then renamed in.
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { packModelFolder } from '../../src/models/pack.js';
import type { ExportIoVariant, LlamaGraphOptions, ModelLayout, ModelPrecision } from './llama-ops.js';
import { buildLlamaGraph } from './llama-graph.js';
import { ExternalDataWriter, writeModel } from './onnx-writer.js';
import { type WrittenTokenizer, writeTokenizerFiles } from './tokenizer-writer.js';
import { type LlamaShape, seededWeightSource } from './weights.js';
import { pathExists, writeJsonFile } from '../../src/models/package-files.js';

/** Writes tokenizer.json + tokenizer_config.json into a folder and names the special ids. */
export type TokenizerFilesWriter = (dir: string, opts: { vocabSize: number; modelMaxLength?: number }) => Promise<WrittenTokenizer>;

export interface BuildModelPackageOptions {
  outDir: string;
  layout: ModelLayout;
  precision: ModelPrecision;
  shape: LlamaShape;
  seed: number;
  name: string;
  version: string;
  /** Default true: logits only for the last position, [batch, 1, vocab]. */
  lastTokenLogitsOnly?: boolean;
  /** Default: the project's deterministic byte-level BPE (writeTokenizerFiles). */
  tokenizer?: TokenizerFilesWriter;
  /** Integer micro-dollars per million tokens, recorded in the manifest. */
  priceMicrosPerMillion?: { input: number; output: number };
  /** MatMulNBits accuracy_level for quantized precisions. */
  accuracyLevel?: number;
  /** Input/output element types and position_ids, as real exports vary them. */
  io?: ExportIoVariant;
  /**
   * genai only, written as search.past_present_share_buffer (default true, false with MultiHeadAttention). onnxruntime-genai's builder
   * writes false for MultiHeadAttention exports, fp32 CUDA exports and quantized KV caches: a growing cache.
   */
  sharedKvBuffer?: boolean;
  /** false keeps lm_head fp32 in a quantized model (default true). */
  quantizeLmHead?: boolean;
  /** genai only: the attention op (LlamaGraphOptions.attention); MultiHeadAttention's cache grows, so sharedKvBuffer defaults to false with it. */
  attention?: LlamaGraphOptions['attention'];
}

export class PackageExistsError extends Error {
  override name = 'PackageExistsError';
  constructor(readonly outDir: string) {
    super(`${outDir} already exists; remove it first or build into another folder`);
  }
}

/** transformers.js file names: dtype q4 -> model_q4.onnx, int8 -> model_int8.onnx. */
const OPTIMUM_ONNX_FILE: Record<ModelPrecision, string> = {
  fp32: 'model.onnx',
  int8: 'model_int8.onnx',
  int4: 'model_q4.onnx',
};
const TRANSFORMERS_JS_DTYPE: Record<ModelPrecision, string> = { fp32: 'fp32', int8: 'int8', int4: 'q4' };

/** Package-relative path of the decoder for a layout and precision. */
export function onnxFileOf(layout: ModelLayout, precision: ModelPrecision): string {
  return layout === 'genai' ? 'model.onnx' : `onnx/${OPTIMUM_ONNX_FILE[precision]}`;
}

function optimumConfig(opts: BuildModelPackageOptions, ids: WrittenTokenizer): Record<string, unknown> {
  const { shape } = opts;
  const onnxName = OPTIMUM_ONNX_FILE[opts.precision];
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: shape.hiddenSize,
    intermediate_size: shape.intermediateSize,
    num_attention_heads: shape.numHeads,
    num_key_value_heads: shape.numKvHeads,
    head_dim: shape.headDim,
    num_hidden_layers: shape.numLayers,
    vocab_size: shape.vocabSize,
    max_position_embeddings: shape.contextLength,
    rope_theta: shape.ropeTheta,
    rope_scaling: null,
    rms_norm_eps: shape.rmsNormEps,
    hidden_act: 'silu',
    attention_bias: false,
    mlp_bias: false,
    tie_word_embeddings: shape.tieWordEmbeddings ?? false,
    bos_token_id: ids.bosTokenId ?? null,
    eos_token_id: ids.eosTokenIds.length === 1 ? ids.eosTokenIds[0] : ids.eosTokenIds,
    pad_token_id: ids.padTokenId ?? null,
    torch_dtype: 'float32',
    use_cache: true,
    'transformers.js_config': {
      dtype: TRANSFORMERS_JS_DTYPE[opts.precision],
      use_external_data_format: { [onnxName]: 1 },
    },
  };
}

function generationConfig(ids: WrittenTokenizer): Record<string, unknown> {
  return {
    ...(ids.bosTokenId === undefined ? {} : { bos_token_id: ids.bosTokenId }),
    eos_token_id: ids.eosTokenIds,
    ...(ids.padTokenId === undefined ? {} : { pad_token_id: ids.padTokenId }),
    do_sample: false,
  };
}

/** MultiHeadAttention appends to its past (a growing cache); GroupQueryAttention shares one buffer unless told otherwise. */
function sharesKvBuffer(opts: BuildModelPackageOptions): boolean {
  const mha = opts.attention === 'MultiHeadAttention';
  if (mha && opts.sharedKvBuffer === true) throw new RangeError('a MultiHeadAttention graph grows its KV cache: it cannot share one buffer (sharedKvBuffer: true)');
  return opts.sharedKvBuffer ?? !mha;
}

function genaiConfig(opts: BuildModelPackageOptions, ids: WrittenTokenizer): Record<string, unknown> {
  const { shape } = opts;
  return {
    model: {
      // Only a real BOS: the engine may prepend it, and both layouts must tokenize alike.
      ...(ids.bosTokenId === undefined ? {} : { bos_token_id: ids.bosTokenId }),
      context_length: shape.contextLength,
      decoder: {
        session_options: { log_id: 'onnxruntime-genai', provider_options: [] },
        filename: 'model.onnx',
        head_size: shape.headDim,
        hidden_size: shape.hiddenSize,
        inputs: {
          input_ids: 'input_ids',
          attention_mask: 'attention_mask',
          past_key_names: 'past_key_values.%d.key',
          past_value_names: 'past_key_values.%d.value',
        },
        outputs: {
          logits: 'logits',
          present_key_names: 'present.%d.key',
          present_value_names: 'present.%d.value',
        },
        num_attention_heads: shape.numHeads,
        num_hidden_layers: shape.numLayers,
        num_key_value_heads: shape.numKvHeads,
      },
      eos_token_id: ids.eosTokenIds,
      pad_token_id: ids.padTokenId ?? ids.eosTokenIds[0],
      type: 'llama',
      vocab_size: shape.vocabSize,
    },
    search: {
      diversity_penalty: 0,
      do_sample: false,
      early_stopping: true,
      length_penalty: 1,
      max_length: shape.contextLength,
      min_length: 0,
      no_repeat_ngram_size: 0,
      num_beams: 1,
      num_return_sequences: 1,
      past_present_share_buffer: sharesKvBuffer(opts),
      repetition_penalty: 1,
      temperature: 1,
      top_k: 1,
      top_p: 1,
    },
  };
}

async function writeDecoder(dir: string, opts: BuildModelPackageOptions): Promise<void> {
  const onnxPath = path.join(dir, onnxFileOf(opts.layout, opts.precision));
  await mkdir(path.dirname(onnxPath), { recursive: true });
  // Optimum/transformers.js name the data `<file>_data`, onnxruntime-genai `<file>.data`.
  const dataName = `${path.basename(onnxPath)}${opts.layout === 'genai' ? '.data' : '_data'}`;
  const external = new ExternalDataWriter(path.join(path.dirname(onnxPath), dataName), dataName);
  const graphOptions: LlamaGraphOptions = {
    layout: opts.layout,
    precision: opts.precision,
    lastTokenLogitsOnly: opts.lastTokenLogitsOnly ?? true,
    accuracyLevel: opts.accuracyLevel,
    io: opts.io,
    quantizeLmHead: opts.quantizeLmHead,
    attention: opts.attention,
  };
  try {
    const graph = buildLlamaGraph(seededWeightSource(opts.shape, opts.seed), graphOptions, external);
    await writeModel(onnxPath, graph);
  } finally {
    external.close();
  }
}

/**
 * Builds the package into a temporary folder beside `outDir` and renames it into place. If another
 * process renamed the same package in first, this build is discarded (the packages are identical).
 */
export async function buildModelPackage(opts: BuildModelPackageOptions): Promise<void> {
  const outDir = path.resolve(opts.outDir);
  if (await pathExists(outDir)) throw new PackageExistsError(outDir);
  await mkdir(path.dirname(outDir), { recursive: true });
  const tmpDir = `${outDir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  await mkdir(tmpDir);
  try {
    await writeDecoder(tmpDir, opts);
    const writeTokenizer = opts.tokenizer ?? writeTokenizerFiles;
    const ids = await writeTokenizer(tmpDir, { vocabSize: opts.shape.vocabSize, modelMaxLength: opts.shape.contextLength });
    if (opts.layout === 'genai') {
      await writeJsonFile(path.join(tmpDir, 'genai_config.json'), genaiConfig(opts, ids));
    } else {
      await writeJsonFile(path.join(tmpDir, 'config.json'), optimumConfig(opts, ids));
      await writeJsonFile(path.join(tmpDir, 'generation_config.json'), generationConfig(ids));
    }
    await packModelFolder(tmpDir, {
      name: opts.name,
      version: opts.version,
      onnxFile: onnxFileOf(opts.layout, opts.precision),
      ...(opts.priceMicrosPerMillion ? { priceMicrosPerMillion: opts.priceMicrosPerMillion } : {}),
    });
    try {
      await rename(tmpDir, outDir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // Lost the race to a concurrent build of the same package: keep theirs.
      if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await pathExists(outDir))) return;
      throw error;
    }
  } finally {
    await rm(tmpDir, { recursive: true, force: true });
  }
}
