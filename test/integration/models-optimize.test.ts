// `aigw models optimize` on builder packages shaped like published int4 exports (fp32 lm_head, and a
// tied one): the rewritten graph, the new package version, greedy tokens equal to the float64
// reference on exactly the weights the new graph multiplies by, and the agreement bar (refuse / --force).
import { readFile, rm, stat } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { modelsCommand } from '../../src/cli/models-command.js';
import { OptimizationRefusedError, generate, loadModel, optimizeModel, unloadAllModels } from '../../src/engine/index.js';
import { dequantize, quantizeMatrix, quantizeRows, readManifest, verifyModelFolder } from '../../src/models/index.js';
import { type NodeProto, onnx } from '../../src/models/onnx-model-file.js';
import { presetShape } from '../../tools/model-builder/presets.js';
import { type LlamaWeights, makeSeededWeights, transpose } from '../../tools/model-builder/weights.js';
import { referenceGreedy } from '../helpers/reference-llama.js';
import { TEST_MODEL_SEED, ensureTestModel } from '../helpers/test-models.js';

const PROMPT = [5, 99, 1500, 42, 7, 300, 1234, 17];
const NEW_TOKENS = 12;

let scratch: string;
let untied: string;
let tied: string;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'aigw-optimize-'));
  untied = await ensureTestModel({ layout: 'optimum', precision: 'int4', quantizeLmHead: false });
  tied = await ensureTestModel({ layout: 'genai', precision: 'int4', quantizeLmHead: false, tieWordEmbeddings: true });
});

afterAll(async () => {
  await unloadAllModels();
  await rm(scratch, { recursive: true, force: true });
});

async function graphOf(dir: string) {
  const manifest = await readManifest(dir);
  return onnx.ModelProto.decode(await readFile(path.join(dir, manifest.onnxFile))).graph!;
}

function intAttr(node: NodeProto, name: string): number | undefined {
  const value = node.attribute?.find((a) => a.name === name)?.i;
  return value === undefined || value === null ? undefined : Number(value);
}

/** The weights the optimized graph multiplies by: int4 layers, lm_head (and a tied table) at `headBits`. */
function optimizedWeights(tiedEmbeddings: boolean, headBits: 4 | 8): LlamaWeights {
  const shape = { ...presetShape('tiny'), tieWordEmbeddings: tiedEmbeddings };
  const w = makeSeededWeights(shape, TEST_MODEL_SEED);
  const q4 = (m: Float32Array, k: number, n: number) => dequantize(quantizeMatrix(m, k, n, 4));
  const { hiddenSize: e, numHeads: h, numKvHeads: kv, headDim: d, intermediateSize: inter, vocabSize: v } = shape;
  const lmHead = tiedEmbeddings ? dequantize(quantizeRows(w.embedTokens, v, e, headBits)) : dequantize(quantizeMatrix(w.lmHead, e, v, headBits));
  return {
    shape,
    embedTokens: tiedEmbeddings ? transpose(lmHead, e, v) : w.embedTokens,
    finalNorm: w.finalNorm,
    lmHead,
    layers: w.layers.map((l) => ({
      ...l,
      qProj: q4(l.qProj, e, h * d),
      kProj: q4(l.kProj, e, kv * d),
      vProj: q4(l.vProj, e, kv * d),
      oProj: q4(l.oProj, h * d, e),
      gateProj: q4(l.gateProj, e, inter),
      upProj: q4(l.upProj, e, inter),
      downProj: q4(l.downProj, inter, e),
    })),
  };
}

const referenceTokens = (weights: LlamaWeights) => referenceGreedy(weights, PROMPT, NEW_TOKENS);

async function greedy(dir: string): Promise<number[]> {
  const model = await loadModel(dir, { threads: 1 });
  const tokens: number[] = [];
  for await (const event of generate(model, PROMPT, { temperature: 0, maxTokens: NEW_TOKENS, ignoreEos: true })) {
    if (event.type === 'token') tokens.push(event.tokenId);
  }
  return tokens;
}

const FAST = { speedTokens: 8, speedRuns: 1, threads: 1 } as const;

describe('aigw models optimize', () => {
  it('fp32 lm_head -> int8 MatMulNBits; greedy tokens equal the float64 reference on the new weights', async () => {
    const out = path.join(scratch, 'untied-int8');
    const result = await optimizeModel(untied, out, { accuracyLevel: 0, lmHeadBits: 8, ...FAST });
    expect(result.manifest.version).toBe('1-opt');
    expect(result.manifest.name).toBe((await readManifest(untied)).name);
    await verifyModelFolder(out, await readManifest(out));
    expect(result.changes).toMatchObject({
      matMulNBits: 4 * 7,
      lmHead: { action: 'quantized', bits: 8, tied: false },
      embeddings: { action: 'kept' },
    });

    const graph = await graphOf(out);
    const nbits = graph.node!.filter((n) => n.opType === 'MatMulNBits');
    expect(nbits).toHaveLength(4 * 7 + 1);
    expect(nbits.every((n) => intAttr(n, 'accuracy_level') === 0)).toBe(true);
    expect(graph.node!.some((n) => n.opType === 'MatMul' && graph.initializer!.some((t) => t.name === n.input![1]))).toBe(false);
    expect(graph.initializer!.some((t) => t.name === 'lm_head.weight')).toBe(false);

    const reference = referenceTokens(optimizedWeights(false, 8));
    expect(new Set(reference).size).toBeGreaterThan(3);
    expect(await greedy(out)).toEqual(reference);
    expect(result.comparison.top1Agreement).toBeGreaterThanOrEqual(0.95);
    expect(result.comparison.maxRelativeLogitError).toBeGreaterThan(0);
    expect(result.comparison.speedUp).toBeGreaterThan(0);
  });

  it('tied embeddings: lm_head int4 and the embedding Gather on the same quantized bytes (GatherBlockQuantized)', async () => {
    const out = path.join(scratch, 'tied-int4');
    const result = await optimizeModel(tied, out, { accuracyLevel: 0, lmHeadBits: 4, ...FAST, minAgreement: 0 });
    expect(result.changes).toMatchObject({ lmHead: { action: 'quantized', bits: 4, tied: true }, embeddings: { action: 'GatherBlockQuantized' } });

    const graph = await graphOf(out);
    expect(graph.node!.filter((n) => n.opType === 'GatherBlockQuantized')).toHaveLength(1);
    expect(graph.node!.some((n) => n.opType === 'Transpose')).toBe(false);
    expect(graph.initializer!.some((t) => t.name === 'model.embed_tokens.weight')).toBe(false);
    const size = async (dir: string) => (await readManifest(dir)).files.reduce((sum, f) => sum + f.size, 0);
    // The fp32 table (2048 x 256 x 4 bytes = 2 MB) is gone; the int4 copy is an eighth of it.
    expect(await size(tied) - (await size(out))).toBeGreaterThan(1.5e6);

    expect(await greedy(out)).toEqual(referenceTokens(optimizedWeights(true, 4)));
  });

  it('keeps a tied table fp32 when asked, and still quantizes lm_head', async () => {
    const out = path.join(scratch, 'tied-keep');
    const result = await optimizeModel(tied, out, { lmHeadBits: 8, quantizeTiedEmbeddings: false, ...FAST, minAgreement: 0 });
    expect(result.changes.embeddings).toEqual({ action: 'kept', reason: 'kept fp32 on request' });
    const graph = await graphOf(out);
    expect(graph.node!.filter((n) => n.opType === 'Gather' && n.input![0] === 'model.embed_tokens.weight')).toHaveLength(1);
    expect((await loadModel(out, { threads: 1 })).io.sharedKvBuffer).toBe(true);
  });

  it('refuses below the agreement bar and writes nothing; --force keeps it with a warning', async () => {
    const out = path.join(scratch, 'refused');
    const refused = await optimizeModel(untied, out, { lmHeadBits: 4, minAgreement: 1.01, ...FAST }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OptimizationRefusedError);
    expect((refused as Error).message).toMatch(/greedy agreement [\d.]+ % is below the 101\.0 % bar/);
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });

    const forced = await optimizeModel(untied, out, { lmHeadBits: 4, minAgreement: 1.01, force: true, ...FAST });
    expect(forced.warning).toMatch(/kept because of --force/);
    expect((await readManifest(out)).version).toBe('1-opt');
  });

  it('refuses to overwrite an existing folder', async () => {
    await expect(optimizeModel(untied, untied, FAST)).rejects.toThrow(/already exists/);
  });

  it('the CLI prints what changed, the agreement and the measured speed-up', async () => {
    const out = path.join(scratch, 'cli');
    const lines: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((line: string) => void lines.push(line));
    try {
      await modelsCommand().parseAsync(['optimize', untied, '--out', out, '--version', '2', '--threads', '1'], { from: 'user' });
    } finally {
      log.mockRestore();
    }
    const text = lines.join('\n');
    expect(text).toMatch(/wrote .+@2 to /);
    expect(text).toMatch(/28 MatMulNBits at accuracy_level 4; lm_head int8/);
    expect(text).toMatch(/greedy agreement [\d.]+ % \(128 positions/);
    expect(text).toMatch(/ms\/token: [\d.]+x speed-up/);
    expect((await readManifest(out)).version).toBe('2');
  });
});
