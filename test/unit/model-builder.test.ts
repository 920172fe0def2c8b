import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../../src/models/manifest.js';
import { verifyModelFolder } from '../../src/models/verify.js';
import type { ModelLayout, ModelPrecision } from '../../tools/model-builder/llama-ops.js';
import { DataType, type TensorProto, nodeProto, onnx, tensorProto, valueInfo, attrInt } from '../../tools/model-builder/onnx-writer.js';
import { PackageExistsError, buildModelPackage } from '../../tools/model-builder/package-writer.js';
import { PRESETS, presetShape } from '../../tools/model-builder/presets.js';
import { type QuantBits, dequantize, quantizeMatrix } from '../../tools/model-builder/quantize.js';
import { type LlamaWeights, makeSeededWeights, seededWeightSource } from '../../tools/model-builder/weights.js';
import { TEST_MODEL_SEED, ensureTestModel } from '../helpers/test-models.js';

const SHAPE = presetShape('tiny');
const { numLayers: LAYERS, numKvHeads: KV, headDim: D, vocabSize: V } = SHAPE;
const PROMPT = [17, 3, 250, 1024, 9, 77];
const DECODE_STEPS = 3;
const PRECISIONS: ModelPrecision[] = ['fp32', 'int8', 'int4'];
const LAYOUTS: ModelLayout[] = ['optimum', 'genai'];

type Feeds = Record<string, ort.Tensor>;

async function openSession(dir: string): Promise<ort.InferenceSession> {
  const manifest = await readManifest(dir);
  return ort.InferenceSession.create(path.join(dir, manifest.onnxFile));
}

function int64(values: number[], dims: number[]): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(values.map(BigInt)), dims);
}

function lastRow(logits: ort.Tensor, batchIndex = 0): Float32Array {
  const [, seq, vocab] = logits.dims;
  const data = logits.data as Float32Array;
  const start = (batchIndex * seq + seq - 1) * vocab;
  return data.slice(start, start + vocab);
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** max |a - b| / max |b| */
function relativeError(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

interface Generation {
  /** Last-position logits after the prefill and after each decode step. */
  logits: Float32Array[];
  tokens: number[];
}

/** Optimum layout: the cache grows by concatenation; position_ids from the running length. */
async function generateOptimum(session: ort.InferenceSession, prompt: number[], steps: number): Promise<Generation> {
  const past: Feeds = {};
  for (let i = 0; i < LAYERS; i++) {
    for (const kind of ['key', 'value']) past[`past_key_values.${i}.${kind}`] = new ort.Tensor('float32', new Float32Array(0), [1, KV, 0, D]);
  }
  const result: Generation = { logits: [], tokens: [] };
  let ids = prompt;
  let total = 0;
  for (let step = 0; step <= steps; step++) {
    const out = await session.run({
      ...past,
      input_ids: int64(ids, [1, ids.length]),
      attention_mask: int64(new Array(total + ids.length).fill(1), [1, total + ids.length]),
      position_ids: int64(ids.map((_, i) => total + i), [1, ids.length]),
    });
    total += ids.length;
    for (let i = 0; i < LAYERS; i++) {
      for (const kind of ['key', 'value']) {
        const present = out[`present.${i}.${kind}`];
        expect(present.dims).toEqual([1, KV, total, D]);
        past[`past_key_values.${i}.${kind}`] = present;
      }
    }
    const logits = lastRow(out.logits);
    result.logits.push(logits);
    result.tokens.push(argmax(logits));
    ids = [argmax(logits)];
  }
  return result;
}

/** genai layout as onnxruntime-genai runs it: one pre-allocated buffer is both past input and present output. */
async function generateGenaiShared(
  session: ort.InferenceSession,
  prompt: number[],
  steps: number,
  maxLength = 32,
): Promise<Generation & { buffers: Record<string, ort.Tensor> }> {
  const buffers: Record<string, ort.Tensor> = {};
  for (let i = 0; i < LAYERS; i++) {
    for (const kind of ['key', 'value']) {
      buffers[`${i}.${kind}`] = new ort.Tensor('float32', new Float32Array(KV * maxLength * D), [1, KV, maxLength, D]);
    }
  }
  const result = { logits: [] as Float32Array[], tokens: [] as number[], buffers };
  let ids = prompt;
  let total = 0;
  for (let step = 0; step <= steps; step++) {
    total += ids.length;
    const feeds: Feeds = { input_ids: int64(ids, [1, ids.length]), attention_mask: int64(new Array(total).fill(1), [1, total]) };
    const fetches: Record<string, ort.Tensor | null> = { logits: null };
    for (let i = 0; i < LAYERS; i++) {
      for (const kind of ['key', 'value']) {
        feeds[`past_key_values.${i}.${kind}`] = buffers[`${i}.${kind}`];
        fetches[`present.${i}.${kind}`] = buffers[`${i}.${kind}`];
      }
    }
    const out = await session.run(feeds, fetches);
    expect(out['present.0.key'].dims).toEqual([1, KV, maxLength, D]);
    const logits = lastRow(out.logits);
    result.logits.push(logits);
    result.tokens.push(argmax(logits));
    ids = [argmax(logits)];
  }
  return result;
}

function shapeOf(meta: readonly ort.InferenceSession.ValueMetadata[], name: string) {
  const m = meta.find((x) => x.name === name);
  return m && m.isTensor ? { type: m.type, shape: m.shape } : undefined;
}

interface Initializer {
  dims: number[];
  bytes: Uint8Array;
}

/** Every initializer of an ONNX file, external data resolved. */
async function readInitializers(onnxPath: string): Promise<{ model: InstanceType<typeof onnx.ModelProto>; initializers: Map<string, Initializer> }> {
  const model = onnx.ModelProto.decode(await readFile(onnxPath));
  const initializers = new Map<string, Initializer>();
  const externalFiles = new Map<string, Buffer>();
  for (const tensor of model.graph!.initializer as TensorProto[]) {
    const dims = (tensor.dims ?? []).map(Number);
    if (tensor.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
      const entry = (key: string) => tensor.externalData!.find((e) => e.key === key)!.value!;
      const location = entry('location');
      if (!externalFiles.has(location)) externalFiles.set(location, await readFile(path.join(path.dirname(onnxPath), location)));
      const offset = Number(entry('offset'));
      const length = Number(entry('length'));
      initializers.set(tensor.name!, { dims, bytes: externalFiles.get(location)!.subarray(offset, offset + length) });
    } else {
      initializers.set(tensor.name!, { dims, bytes: tensor.rawData! });
    }
  }
  return { model, initializers };
}

function floats(bytes: Uint8Array): Float32Array {
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

function referenceWeight(weights: LlamaWeights, name: string): Float32Array {
  if (name === 'lm_head') return weights.lmHead;
  const match = /^model\.layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)$/.exec(name);
  if (!match) throw new Error(`unexpected quantized weight ${name}`);
  const layer = weights.layers[Number(match[1])];
  const byName: Record<string, Float32Array> = {
    q_proj: layer.qProj,
    k_proj: layer.kProj,
    v_proj: layer.vProj,
    o_proj: layer.oProj,
    gate_proj: layer.gateProj,
    up_proj: layer.upProj,
    down_proj: layer.downProj,
    // The genai layout packs q, k and v into one product, their columns side by side.
    qkv_proj: sideBySide([layer.qProj, layer.kProj, layer.vProj], SHAPE.hiddenSize),
  };
  return byName[match[2]];
}

/** Row-major [k, n1], [k, n2], ... as one row-major [k, n1 + n2 + ...]. */
function sideBySide(parts: Float32Array[], k: number): Float32Array {
  const widths = parts.map((p) => p.length / k);
  const n = widths.reduce((a, b) => a + b, 0);
  const out = new Float32Array(k * n);
  for (let row = 0; row < k; row++) {
    let column = 0;
    parts.forEach((p, i) => {
      for (let c = 0; c < widths[i]; c++) out[row * n + column + c] = p[row * widths[i] + c];
      column += widths[i];
    });
  }
  return out;
}

describe('seeded weights', () => {
  it('are deterministic per seed and streamable layer by layer', () => {
    const a = makeSeededWeights(SHAPE, 7);
    const b = makeSeededWeights(SHAPE, 7);
    const c = makeSeededWeights(SHAPE, 8);
    expect(a.layers[2].qProj).toEqual(b.layers[2].qProj);
    expect(a.lmHead).toEqual(b.lmHead);
    expect(a.embedTokens).not.toEqual(c.embedTokens);
    expect(seededWeightSource(SHAPE, 7).layer(3).downProj).toEqual(a.layers[3].downProj);
  });

  it('have the documented [in, out] sizes and sensible scales', () => {
    const w = makeSeededWeights(SHAPE, 1);
    const { hiddenSize: e, numHeads: h, intermediateSize: inter } = SHAPE;
    expect(w.embedTokens.length).toBe(V * e);
    expect(w.lmHead.length).toBe(e * V);
    expect(w.layers).toHaveLength(LAYERS);
    expect(w.layers[0].qProj.length).toBe(e * h * D);
    expect(w.layers[0].kProj.length).toBe(e * KV * D);
    expect(w.layers[0].oProj.length).toBe(h * D * e);
    expect(w.layers[0].downProj.length).toBe(inter * e);
    const std = (x: Float32Array) => Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);
    expect(std(w.layers[1].gateProj)).toBeCloseTo(0.02, 3);
    const norm = w.layers[0].inputNorm;
    expect(Math.min(...norm)).toBeGreaterThan(0.9);
    expect(Math.max(...norm)).toBeLessThan(1.1);
  });
});

describe('presets', () => {
  it('keep every K dimension a multiple of the 32-wide quantization block', () => {
    for (const shape of Object.values(PRESETS)) {
      for (const k of [shape.hiddenSize, shape.numHeads * shape.headDim, shape.intermediateSize]) expect(k % 32).toBe(0);
      expect(shape.numHeads % shape.numKvHeads).toBe(0);
    }
  });

  it('size tiny at about 4M parameters', () => {
    const { hiddenSize: e, numHeads: h, numKvHeads: kv, headDim: d, intermediateSize: i, vocabSize: v, numLayers: l } = PRESETS.tiny;
    const params = 2 * v * e + l * (e * h * d * 2 + 2 * e * kv * d + 3 * e * i + 2 * e) + e;
    expect(params).toBeGreaterThan(3.5e6);
    expect(params).toBeLessThan(4.5e6);
  });
});

describe('block quantization', () => {
  for (const bits of [4, 8] as QuantBits[]) {
    it(`${bits}-bit dequantizes within half a step of every block`, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 3 }),
          fc.integer({ min: 1, max: 5 }),
          fc.float({ min: Math.fround(1e-3), max: 10, noNaN: true }),
          fc.integer(),
          (blocks, n, amplitude, seed) => {
            const k = blocks * 32;
            let state = seed >>> 0;
            const w = Float32Array.from({ length: k * n }, () => {
              state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
              return (state / 2 ** 32 - 0.5) * 2 * amplitude;
            });
            const q = quantizeMatrix(w, k, n, bits);
            expect(q.data.length).toBe(n * blocks * (32 * bits) / 8);
            const back = dequantize(q);
            for (let col = 0; col < n; col++) {
              for (let b = 0; b < blocks; b++) {
                const scale = q.scales[col * blocks + b];
                for (let i = 0; i < 32; i++) {
                  const idx = (b * 32 + i) * n + col;
                  expect(Math.abs(back[idx] - w[idx])).toBeLessThanOrEqual(scale / 2 + scale * 1e-5);
                }
              }
            }
          },
        ),
        { numRuns: 50 },
      );
    });
  }

  it('packs the even k in the low nibble and keeps an all-zero block at zero', () => {
    const w = new Float32Array(64 * 1); // K=64, N=1
    w[0] = 7; // block 0: scale 1, q=7 -> stored 15
    w[1] = -7; // stored 1
    const q = quantizeMatrix(w, 64, 1, 4);
    expect(q.scales[0]).toBe(1);
    expect(q.data[0]).toBe(15 | (1 << 4));
    expect(q.data[1]).toBe(8 | (8 << 4));
    expect(q.scales[1]).toBe(0);
    expect(Array.from(dequantize(q).subarray(32))).toEqual(new Array(32).fill(0));
  });

  for (const bits of [4, 8] as QuantBits[]) {
    it(`${bits}-bit layout matches onnxruntime's MatMulNBits`, async () => {
      const [m, k, n] = [3, 96, 40];
      const w = seededWeightSource(SHAPE, 5).layer(0).qProj.slice(0, k * n);
      const q = quantizeMatrix(w, k, n, bits);
      const graph = {
        name: 'matmulnbits',
        node: [
          nodeProto('MatMulNBits', ['A', 'B', 'scales'], ['Y'], [attrInt('K', k), attrInt('N', n), attrInt('bits', bits), attrInt('block_size', 32)], 'com.microsoft'),
        ],
        initializer: [
          tensorProto('B', DataType.UINT8, [n, k / 32, (32 * bits) / 8], q.data),
          tensorProto('scales', DataType.FLOAT, [n * (k / 32)], q.scales),
        ],
        input: [valueInfo('A', DataType.FLOAT, [m, k])],
        output: [valueInfo('Y', DataType.FLOAT, [m, n])],
      };
      const bytes = onnx.ModelProto.encode({
        irVersion: 8,
        opsetImport: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }],
        graph,
      }).finish();
      const session = await ort.InferenceSession.create(bytes);
      const a = Float32Array.from({ length: m * k }, (_, i) => Math.sin(i * 0.37));
      const y = (await session.run({ A: new ort.Tensor('float32', a, [m, k]) })).Y.data as Float32Array;
      const deq = dequantize(q);
      const expected = new Float32Array(m * n);
      for (let r = 0; r < m; r++) {
        for (let c = 0; c < n; c++) {
          let sum = 0;
          for (let i = 0; i < k; i++) sum += a[r * k + i] * deq[i * n + c];
          expected[r * n + c] = sum;
        }
      }
      expect(relativeError(y, expected)).toBeLessThan(1e-5);
      await session.release();
    });
  }
});

describe('built tiny packages in onnxruntime', () => {
  const dirs = new Map<string, string>();
  const sessions = new Map<string, ort.InferenceSession>();
  const keyOf = (layout: ModelLayout, precision: ModelPrecision) => `${layout}-${precision}`;
  const session = (layout: ModelLayout, precision: ModelPrecision) => sessions.get(keyOf(layout, precision))!;

  beforeAll(async () => {
    for (const layout of LAYOUTS) {
      for (const precision of PRECISIONS) {
        const dir = await ensureTestModel({ layout, precision });
        dirs.set(keyOf(layout, precision), dir);
        sessions.set(keyOf(layout, precision), await openSession(dir));
      }
    }
  });

  afterAll(async () => {
    for (const s of sessions.values()) await s.release();
  });

  it('write the files of each layout and a manifest that names them', async () => {
    for (const precision of PRECISIONS) {
      const optimum = dirs.get(keyOf('optimum', precision))!;
      const onnxName = { fp32: 'model.onnx', int8: 'model_int8.onnx', int4: 'model_q4.onnx' }[precision];
      const manifest = await readManifest(optimum);
      expect(manifest.layout).toBe('optimum');
      expect(manifest.onnxFile).toBe(`onnx/${onnxName}`);
      expect(manifest.contextLength).toBe(SHAPE.contextLength);
      expect(manifest.files.map((f) => f.path)).toEqual(
        expect.arrayContaining([`onnx/${onnxName}`, `onnx/${onnxName}_data`, 'config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json']),
      );
      const config = JSON.parse(await readFile(path.join(optimum, 'config.json'), 'utf8'));
      expect(config).toMatchObject({
        model_type: 'llama',
        architectures: ['LlamaForCausalLM'],
        hidden_size: SHAPE.hiddenSize,
        intermediate_size: SHAPE.intermediateSize,
        num_attention_heads: SHAPE.numHeads,
        num_key_value_heads: KV,
        head_dim: D,
        num_hidden_layers: LAYERS,
        vocab_size: V,
        max_position_embeddings: SHAPE.contextLength,
        rope_theta: SHAPE.ropeTheta,
        rms_norm_eps: SHAPE.rmsNormEps,
        torch_dtype: 'float32',
      });
      expect(config.eos_token_id).toEqual(manifest.eosTokenIds);

      const genai = dirs.get(keyOf('genai', precision))!;
      const genaiManifest = await readManifest(genai);
      expect(genaiManifest.layout).toBe('genai');
      expect(genaiManifest.files.map((f) => f.path)).toEqual(
        expect.arrayContaining(['model.onnx', 'model.onnx.data', 'genai_config.json', 'tokenizer.json', 'tokenizer_config.json']),
      );
      const genaiConfig = JSON.parse(await readFile(path.join(genai, 'genai_config.json'), 'utf8'));
      expect(genaiConfig.model).toMatchObject({
        type: 'llama',
        context_length: SHAPE.contextLength,
        vocab_size: V,
        decoder: {
          filename: 'model.onnx',
          head_size: D,
          hidden_size: SHAPE.hiddenSize,
          num_attention_heads: SHAPE.numHeads,
          num_key_value_heads: KV,
          num_hidden_layers: LAYERS,
          inputs: { past_key_names: 'past_key_values.%d.key', past_value_names: 'past_key_values.%d.value' },
          outputs: { logits: 'logits', present_key_names: 'present.%d.key', present_value_names: 'present.%d.value' },
        },
      });
      expect(genaiConfig.search).toMatchObject({ past_present_share_buffer: true, max_length: SHAPE.contextLength });
      expect(genaiConfig.model.eos_token_id).toEqual(genaiManifest.eosTokenIds);
    }
  });

  it('keep every large initializer in the external file at 64-byte aligned offsets', async () => {
    for (const [key, dir] of dirs) {
      const manifest = await readManifest(dir);
      const onnxPath = path.join(dir, manifest.onnxFile);
      const model = onnx.ModelProto.decode(await readFile(onnxPath));
      const dataFile = key.startsWith('genai') ? `${onnxPath}.data` : `${onnxPath}_data`;
      const dataSize = (await stat(dataFile)).size;
      expect(model.opsetImport).toEqual(expect.arrayContaining([expect.objectContaining({ domain: 'com.microsoft' })]));
      for (const tensor of model.graph?.initializer ?? []) {
        if (tensor.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
          const entry = (k: string) => tensor.externalData?.find((e) => e.key === k)?.value;
          expect(entry('location')).toBe(path.basename(dataFile));
          const offset = Number(entry('offset'));
          expect(offset % 64).toBe(0);
          expect(offset + Number(entry('length'))).toBeLessThanOrEqual(dataSize);
        } else {
          expect(tensor.rawData?.length ?? 0).toBeLessThan(1024);
        }
      }
    }
  });

  it('declare the layout input and output names with symbolic shapes', () => {
    const kvNames = (prefix: string) =>
      Array.from({ length: LAYERS }, (_, i) => [`${prefix}.${i}.key`, `${prefix}.${i}.value`]).flat();
    for (const precision of PRECISIONS) {
      const optimum = session('optimum', precision);
      expect(optimum.inputNames).toEqual(['input_ids', 'attention_mask', 'position_ids', ...kvNames('past_key_values')]);
      expect(optimum.outputNames).toEqual(['logits', ...kvNames('present')]);
      const genai = session('genai', precision);
      expect(genai.inputNames).toEqual(['input_ids', 'attention_mask', ...kvNames('past_key_values')]);
      expect(genai.outputNames).toEqual(['logits', ...kvNames('present')]);

      for (const s of [optimum, genai]) {
        expect(shapeOf(s.inputMetadata, 'input_ids')).toEqual({ type: 'int64', shape: ['batch_size', 'sequence_length'] });
        expect(shapeOf(s.inputMetadata, 'attention_mask')).toEqual({ type: 'int64', shape: ['batch_size', 'total_sequence_length'] });
        expect(shapeOf(s.inputMetadata, 'past_key_values.3.value')).toEqual({
          type: 'float32',
          shape: ['batch_size', KV, 'past_sequence_length', D],
        });
        expect(shapeOf(s.outputMetadata, 'logits')).toEqual({ type: 'float32', shape: ['batch_size', 1, V] });
        expect(shapeOf(s.outputMetadata, 'present.0.key')).toEqual({
          type: 'float32',
          shape: ['batch_size', KV, 'total_sequence_length', D],
        });
      }
      expect(shapeOf(optimum.inputMetadata, 'position_ids')).toEqual({ type: 'int64', shape: ['batch_size', 'sequence_length'] });
    }
  });

  for (const precision of PRECISIONS) {
    it(`${precision}: optimum prefill + ${DECODE_STEPS} decode steps match genai with one shared past/present buffer`, async () => {
      const optimum = await generateOptimum(session('optimum', precision), PROMPT, DECODE_STEPS);
      const genai = await generateGenaiShared(session('genai', precision), PROMPT, DECODE_STEPS);
      for (const logits of optimum.logits) {
        expect(logits).toHaveLength(V);
        expect(logits.every(Number.isFinite)).toBe(true);
      }
      expect(genai.tokens).toEqual(optimum.tokens);
      for (let step = 0; step <= DECODE_STEPS; step++) {
        expect(relativeError(genai.logits[step], optimum.logits[step])).toBeLessThan(1e-4);
      }
      // The shared buffer itself holds the cache: rows up to the last fed position written, the rest untouched.
      const keys = genai.buffers['0.key'].data as Float32Array;
      const filled = PROMPT.length + DECODE_STEPS; // the last sampled token is never fed back
      const row = (t: number) => keys.subarray(t * D, (t + 1) * D);
      expect(row(filled - 1).some((v) => v !== 0)).toBe(true);
      expect(row(filled).every((v) => v === 0)).toBe(true);
    });
  }

  it('quantized packages follow the fp32 model closely', async () => {
    const fp32 = await generateOptimum(session('optimum', 'fp32'), PROMPT, 0);
    const int8 = await generateOptimum(session('optimum', 'int8'), PROMPT, 0);
    const int4 = await generateOptimum(session('optimum', 'int4'), PROMPT, 0);
    const err8 = relativeError(int8.logits[0], fp32.logits[0]);
    const err4 = relativeError(int4.logits[0], fp32.logits[0]);
    expect(err8).toBeGreaterThan(0);
    expect(err8).toBeLessThan(0.02);
    expect(err4).toBeLessThan(0.3);
    expect(err8).toBeLessThan(err4);
  });

  it('a random model predicts varied tokens, not one collapsed token', async () => {
    const batch = 64;
    const tokens = Array.from({ length: batch }, (_, i) => (i * 31) % V);
    const past: Feeds = {};
    for (let i = 0; i < LAYERS; i++) {
      for (const kind of ['key', 'value']) past[`past_key_values.${i}.${kind}`] = new ort.Tensor('float32', new Float32Array(0), [batch, KV, 0, D]);
    }
    const out = await session('optimum', 'fp32').run({
      ...past,
      input_ids: int64(tokens, [batch, 1]),
      attention_mask: int64(new Array(batch).fill(1), [batch, 1]),
      position_ids: int64(new Array(batch).fill(0), [batch, 1]),
    });
    const predictions = new Set(Array.from({ length: batch }, (_, b) => argmax(lastRow(out.logits, b))));
    expect(predictions.size).toBeGreaterThan(batch / 2);
  });

  it('optimum: a left-padded batch row gives the logits of the same prompt alone, prefill and decode', async () => {
    const s = session('optimum', 'fp32');
    const short = [5, 600, 42];
    const full = [9, 8, 7, 6, 5];
    const pad = 2045;
    const past = (batch: number): Feeds => {
      const feeds: Feeds = {};
      for (let i = 0; i < LAYERS; i++) {
        for (const kind of ['key', 'value']) feeds[`past_key_values.${i}.${kind}`] = new ort.Tensor('float32', new Float32Array(0), [batch, KV, 0, D]);
      }
      return feeds;
    };
    const alone = async (prompt: number[], next: number) => {
      const first = await s.run({
        ...past(1),
        input_ids: int64(prompt, [1, prompt.length]),
        attention_mask: int64(prompt.map(() => 1), [1, prompt.length]),
        position_ids: int64(prompt.map((_, i) => i), [1, prompt.length]),
      });
      const cache: Feeds = {};
      for (let i = 0; i < LAYERS; i++) for (const kind of ['key', 'value']) cache[`past_key_values.${i}.${kind}`] = first[`present.${i}.${kind}`];
      const second = await s.run({
        ...cache,
        input_ids: int64([next], [1, 1]),
        attention_mask: int64(new Array(prompt.length + 1).fill(1), [1, prompt.length + 1]),
        position_ids: int64([prompt.length], [1, 1]),
      });
      return [lastRow(first.logits), lastRow(second.logits)];
    };

    const first = await s.run({
      ...past(2),
      input_ids: int64([pad, pad, ...short, ...full], [2, 5]),
      attention_mask: int64([0, 0, 1, 1, 1, 1, 1, 1, 1, 1], [2, 5]),
      position_ids: int64([0, 0, 0, 1, 2, 0, 1, 2, 3, 4], [2, 5]),
    });
    const cache: Feeds = {};
    for (let i = 0; i < LAYERS; i++) for (const kind of ['key', 'value']) cache[`past_key_values.${i}.${kind}`] = first[`present.${i}.${kind}`];
    const second = await s.run({
      ...cache,
      input_ids: int64([11, 12], [2, 1]),
      attention_mask: int64([0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], [2, 6]),
      position_ids: int64([3, 5], [2, 1]),
    });
    const [shortPrefill, shortDecode] = await alone(short, 11);
    const [fullPrefill, fullDecode] = await alone(full, 12);
    expect(relativeError(lastRow(first.logits, 0), shortPrefill)).toBeLessThan(1e-5);
    expect(relativeError(lastRow(first.logits, 1), fullPrefill)).toBeLessThan(1e-5);
    expect(relativeError(lastRow(second.logits, 0), shortDecode)).toBeLessThan(1e-5);
    expect(relativeError(lastRow(second.logits, 1), fullDecode)).toBeLessThan(1e-5);
  });

  for (const precision of ['int8', 'int4'] as const) {
    it(`${precision}: every projection and lm_head is MatMulNBits whose weights dequantize within scale/2`, async () => {
      const reference = makeSeededWeights(SHAPE, TEST_MODEL_SEED);
      const bits = precision === 'int8' ? 8 : 4;
      for (const layout of LAYOUTS) {
        const dir = dirs.get(keyOf(layout, precision))!;
        const { model, initializers } = await readInitializers(path.join(dir, (await readManifest(dir)).onnxFile));
        const nodes = (model.graph?.node ?? []).map((n) => ({
          opType: n.opType,
          input: n.input ?? [],
          attrs: new Map((n.attribute ?? []).map((a) => [a.name, Number(a.i)])),
        }));
        const nbits = nodes.filter((n) => n.opType === 'MatMulNBits');
        // Seven projections a layer and lm_head; genai packs q/k/v into one product.
        expect(nbits).toHaveLength((layout === 'genai' ? 5 : 7) * LAYERS + 1);
        // No fp32 weight matrix left: plain MatMuls only multiply activations (attention scores in optimum).
        for (const n of nodes.filter((x) => x.opType === 'MatMul')) expect(n.input.some((i) => initializers.has(i))).toBe(false);
        const embedding = initializers.get('model.embed_tokens.weight')!;
        expect(embedding.dims).toEqual([V, SHAPE.hiddenSize]);
        expect(floats(embedding.bytes)).toEqual(reference.embedTokens);

        for (const node of nbits) {
          const attr = (name: string) => node.attrs.get(name);
          const [k, n] = [attr('K')!, attr('N')!];
          expect(attr('bits')).toBe(bits);
          expect(attr('block_size')).toBe(32);
          const b = initializers.get(node.input[1])!;
          const scales = floats(initializers.get(node.input[2])!.bytes);
          expect(b.dims).toEqual([n, k / 32, (32 * bits) / 8]);
          const back = dequantize({ k, n, bits, blockSize: 32, data: b.bytes, scales });
          const original = referenceWeight(reference, node.input[1].replace(/\.weight_Q\d$/, ''));
          expect(original).toHaveLength(k * n);
          let worstRatio = 0;
          for (let col = 0; col < n; col++) {
            for (let blk = 0; blk < k / 32; blk++) {
              const scale = scales[col * (k / 32) + blk];
              expect(scale).toBeGreaterThan(0);
              for (let i = 0; i < 32; i++) {
                const idx = (blk * 32 + i) * n + col;
                worstRatio = Math.max(worstRatio, Math.abs(back[idx] - original[idx]) / scale);
              }
            }
          }
          expect(worstRatio).toBeLessThanOrEqual(0.5 + 1e-5);
        }
      }
    });
  }
});

describe('optimum packages load in transformers.js', () => {
  for (const [precision, dtype] of [['fp32', 'fp32'], ['int4', 'q4']] as const) {
    it(`${precision}: greedy generate gives the tokens of the plain onnxruntime loop`, async () => {
      const { AutoModelForCausalLM, Tensor, env } = await import('@huggingface/transformers');
      const ids = (values: number[]) => new Tensor('int64', BigInt64Array.from(values.map(BigInt)), [1, values.length]);
      const dir = await ensureTestModel({ layout: 'optimum', precision });
      env.allowRemoteModels = false;
      env.localModelPath = `${path.dirname(dir)}/`;
      const model = await AutoModelForCausalLM.from_pretrained(path.basename(dir), { dtype });
      const steps = 4;
      const output = (await model.generate({
        input_ids: ids(PROMPT),
        attention_mask: ids(PROMPT.map(() => 1)),
        max_new_tokens: steps + 1,
        do_sample: false,
      })) as unknown as { tolist(): bigint[][] };
      const generated = output.tolist()[0].slice(PROMPT.length).map(Number);
      const session = await openSession(dir);
      expect(generated).toEqual((await generateOptimum(session, PROMPT, steps)).tokens);
      await session.release();
      await model.dispose();
    });
  }
});

describe('lastTokenLogitsOnly: false', () => {
  for (const layout of LAYOUTS) {
    it(`${layout}: logits cover every position and the last row equals the last-only model's`, async () => {
      const allDir = await ensureTestModel({ layout, precision: 'fp32', lastTokenLogitsOnly: false });
      const lastDir = await ensureTestModel({ layout, precision: 'fp32' });
      const [all, last] = [await openSession(allDir), await openSession(lastDir)];
      const feeds: Feeds = {
        input_ids: int64(PROMPT, [1, PROMPT.length]),
        attention_mask: int64(PROMPT.map(() => 1), [1, PROMPT.length]),
      };
      if (layout === 'optimum') feeds.position_ids = int64(PROMPT.map((_, i) => i), [1, PROMPT.length]);
      const pastLength = layout === 'genai' ? 16 : 0;
      for (let i = 0; i < LAYERS; i++) {
        for (const kind of ['key', 'value']) {
          feeds[`past_key_values.${i}.${kind}`] = new ort.Tensor('float32', new Float32Array(KV * pastLength * D), [1, KV, pastLength, D]);
        }
      }
      const allOut = await all.run(feeds);
      const lastOut = await last.run(feeds);
      expect(allOut.logits.dims).toEqual([1, PROMPT.length, V]);
      expect(lastOut.logits.dims).toEqual([1, 1, V]);
      expect(relativeError(lastRow(allOut.logits), lastRow(lastOut.logits))).toBeLessThan(1e-6);
      // Earlier rows are real predictions too, not copies of the last.
      const first = (allOut.logits.data as Float32Array).subarray(0, V);
      expect(relativeError(first, lastRow(lastOut.logits))).toBeGreaterThan(1e-2);
      await all.release();
      await last.release();
    });
  }
});

describe('buildModelPackage', () => {
  let workDir: string;
  beforeAll(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'aigw-model-builder-'));
  });
  afterAll(async () => {
    await rm(workDir, { recursive: true, force: true });
  });

  it('lets concurrent builds of one package race safely and refuses to overwrite', async () => {
    const outDir = path.join(workDir, 'race', 'pkg');
    const opts = {
      outDir,
      layout: 'genai' as const,
      precision: 'int4' as const,
      shape: SHAPE,
      seed: 3,
      name: 'race',
      version: '2',
      priceMicrosPerMillion: { input: 100, output: 300 },
    };
    await Promise.all([buildModelPackage(opts), buildModelPackage(opts)]);
    expect(await readdir(path.dirname(outDir))).toEqual(['pkg']);
    const manifest = await readManifest(outDir);
    expect(manifest).toMatchObject({ name: 'race', version: '2', layout: 'genai' });
    expect(manifest.price).toEqual({ inputMicrosPerMillionTokens: 100, outputMicrosPerMillionTokens: 300 });
    await verifyModelFolder(outDir, manifest, { force: true });
    await expect(buildModelPackage(opts)).rejects.toBeInstanceOf(PackageExistsError);
  });
});
