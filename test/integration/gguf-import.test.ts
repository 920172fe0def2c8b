// `aigw models import <file.gguf>` on GGUF files the builder writes: the package it makes (configs,
// tokenizer, chat template, special tokens), both ONNX layouts, and the files it refuses, by name.
import { readFile, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gguf } from '@huggingface/gguf';
import { Command } from 'commander';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { modelsCommand } from '../../src/cli/models-command.js';
import { generate, loadModel, unloadAllModels } from '../../src/engine/index.js';
import { GgufImportError } from '../../src/models/errors.js';
import { importGgufFile } from '../../src/models/gguf-import.js';
import { readManifest } from '../../src/models/index.js';
import { GgufWeights } from '../../src/models/gguf-weights.js';
import { onnx, readOnnxModel } from '../../src/models/onnx-model-file.js';
import { INST_TEMPLATE, byteLevelVocab } from '../../tools/model-builder/gguf-vocab.js';
import { writeGgufModel } from '../../tools/model-builder/gguf-writer.js';
import { presetShape } from '../../tools/model-builder/presets.js';
import { CHATML_TEMPLATE } from '../../tools/model-builder/tokenizer-writer.js';
import { TestGgufFiles } from '../helpers/test-gguf.js';

let files: TestGgufFiles;

beforeAll(async () => {
  files = await TestGgufFiles.create();
});

afterAll(async () => {
  await unloadAllModels();
  await files?.remove();
});

async function greedy(dir: string, text: string): Promise<number[]> {
  const model = await loadModel(dir, { threads: 1 });
  const tokens: number[] = [];
  for await (const event of generate(model, model.tokenizer.encode(text), { temperature: 0, maxTokens: 12, ignoreEos: true })) {
    if (event.type === 'token') tokens.push(event.tokenId);
  }
  return tokens;
}

/** A copy of a GGUF file with one same-length byte string replaced (the first occurrence after `after`). */
async function patched(file: string, after: string, from: string, to: string): Promise<string> {
  const bytes = await readFile(file);
  const anchor = bytes.indexOf(after);
  const at = bytes.indexOf(from, anchor + after.length);
  expect(anchor).toBeGreaterThan(0);
  expect(at).toBeGreaterThan(anchor);
  bytes.write(to, at);
  const out = `${file}.${to}.gguf`;
  await writeFile(out, bytes);
  return out;
}

describe('the package', () => {
  it('carries the GGUF chat template, BOS/EOS and add_bos of a SentencePiece model', async () => {
    const dir = await files.imported({ architecture: 'llama', fileType: 'Q4_0', tokenizer: 'spm' });
    const manifest = await readManifest(dir);
    expect(manifest).toMatchObject({ layout: 'genai', onnxFile: 'model.onnx', contextLength: 2048, eosTokenIds: [2], bosTokenId: 1 });
    const config = JSON.parse(await readFile(path.join(dir, 'tokenizer_config.json'), 'utf8'));
    expect(config).toMatchObject({ chat_template: INST_TEMPLATE, bos_token: '<s>', eos_token: '</s>', add_bos_token: true });
    const model = await loadModel(dir, { threads: 1 });
    // The chat template starts with bos_token, as Llama/Mistral templates do.
    expect(model.encodeChat([{ role: 'user', content: 'Hello' }])[0]).toBe(1);
    // tokenizer.json's post-processor adds BOS the way Hugging Face's tokenizer(prompt) does.
    const json = JSON.parse(await readFile(path.join(dir, 'tokenizer.json'), 'utf8'));
    expect(json.post_processor.single[0]).toEqual({ SpecialToken: { id: '<s>', type_id: 0 } });
  });

  it('of a Qwen2 model: ChatML, <|im_end|> ends a turn, no BOS added', async () => {
    const dir = await files.imported({ architecture: 'qwen2', fileType: 'Q8_0', tokenizer: 'bpe-qwen2' });
    const config = JSON.parse(await readFile(path.join(dir, 'tokenizer_config.json'), 'utf8'));
    expect(config).toMatchObject({ chat_template: CHATML_TEMPLATE, eos_token: '<|im_end|>', add_bos_token: false });
    const model = await loadModel(dir, { threads: 1 });
    const ids = model.encodeChat([{ role: 'user', content: 'Hi' }]);
    expect(model.tokenizer.decode(ids)).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
  });

  it('generates the same greedy tokens in the Optimum and onnxruntime-genai layouts', async () => {
    // fp32 compute in both, so the layouts' attention is all that differs.
    const options = { architecture: 'qwen2', fileType: 'Q4_0', tokenizer: 'bpe-qwen2' } as const;
    const optimum = await greedy(await files.imported(options, { layout: 'optimum', accuracyLevel: 0 }), 'The library opens at nine.');
    expect(optimum).toHaveLength(12);
    expect(await greedy(await files.imported(options, { layout: 'genai', accuracyLevel: 0 }), 'The library opens at nine.')).toEqual(optimum);
  });

  it('computes as llama.cpp does by default: GroupQueryAttention on a shared buffer, int8 activations', async () => {
    const options = { architecture: 'llama', fileType: 'Q4_0', tokenizer: 'spm' } as const;
    const accuracyLevels = async (dir: string, onnxFile: string) => {
      const { model } = await readOnnxModel(path.join(dir, onnxFile));
      const nodes = model.graph!.node!;
      const levels = nodes.filter((n) => n.opType === 'MatMulNBits').map((n) => Number(n.attribute!.find((a) => a.name === 'accuracy_level')!.i));
      const count = (opType: string) => nodes.filter((n) => n.opType === opType).length;
      return {
        levels: [...new Set(levels)],
        matmuls: levels.length,
        attention: count('GroupQueryAttention'),
        fusedResidualNorms: count('SkipSimplifiedLayerNormalization'),
      };
    };
    const byDefault = await files.imported(options);
    const genai = JSON.parse(await readFile(path.join(byDefault, 'genai_config.json'), 'utf8'));
    expect(genai.search.past_present_share_buffer).toBe(true);
    const shape = presetShape('tiny');
    // Every matrix of every layer, and lm_head, with q/k/v packed into one product as
    // onnxruntime-genai's builder writes them; each residual add fused with the norm after it, but
    // for the last, which the head's norm takes after keeping the last position.
    expect(await accuracyLevels(byDefault, 'model.onnx')).toEqual({
      levels: [4],
      matmuls: shape.numLayers * 5 + 1,
      attention: shape.numLayers,
      fusedResidualNorms: shape.numLayers * 2 - 1,
    });
    // Q4_K_M keeps attn_v in Q6_K (int8 here) beside int4 q and k: products of different bits stay three.
    const mixed = await readOnnxModel(path.join(await files.imported({ ...options, fileType: 'Q4_K_M' }), 'model.onnx'));
    const bitsOf = (name: RegExp) => mixed.model.graph!.node!.filter((n) => n.opType === 'MatMulNBits' && name.test(n.input![1]!)).map((n) => Number(n.attribute!.find((a) => a.name === 'bits')!.i));
    expect(bitsOf(/^model\.layers\.0\.self_attn\.[qkv]_proj\./)).toEqual([4, 4, 8]);
    const asBefore = await files.imported(options, { layout: 'optimum', accuracyLevel: 0 });
    expect(await accuracyLevels(asBefore, 'onnx/model.onnx')).toMatchObject({ levels: [0], attention: 0 });
  });

  it.each(['Q4_0', 'Q8_0'] as const)('gathers the %s embedding rows as blocks, equal to the GGUF rows dequantized', async (fileType) => {
    const options = { architecture: 'qwen2', fileType, tokenizer: 'bpe-qwen2' } as const;
    const dir = await files.imported(options);
    const { model, tensorBytes } = await readOnnxModel(path.join(dir, 'model.onnx'));
    const graph = model.graph!;
    const gather = graph.node!.find((n) => n.opType === 'GatherBlockQuantized')!;
    expect(gather.input![1]).toBe('input_ids');
    expect(graph.node!.some((n) => n.opType === 'Gather' && n.input![1] === 'input_ids')).toBe(false);
    const { vocabSize, hiddenSize } = presetShape('tiny');
    const bits = fileType === 'Q4_0' ? 4 : 8;
    const initializer = (name: string) => graph.initializer!.find((t) => t.name === name)!;
    const [table, scales] = [initializer(gather.input![0]!), initializer(gather.input![2]!)];
    expect(table.dims!.map(Number)).toEqual([vocabSize, (hiddenSize * bits) / 8]);
    // Every row, gathered by onnxruntime from the package's own initializers, against ggml's dequantization.
    const { DataType } = onnx.TensorProto;
    const lookup = onnx.ModelProto.encode({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }],
      graph: {
        name: 'embedding',
        node: [{ ...gather, input: ['table', 'ids', 'scales'], output: ['rows'] }],
        initializer: [
          { name: 'table', dataType: DataType.UINT8, dims: table.dims, rawData: await tensorBytes(table) },
          { name: 'scales', dataType: DataType.FLOAT, dims: scales.dims, rawData: await tensorBytes(scales) },
        ],
        input: [{ name: 'ids', type: { tensorType: { elemType: DataType.INT64, shape: { dim: [{ dimValue: vocabSize }] } } } }],
        output: [{ name: 'rows', type: { tensorType: { elemType: DataType.FLOAT } } }],
      },
    }).finish();
    const session = await ort.InferenceSession.create(lookup);
    const ids = BigInt64Array.from({ length: vocabSize }, (_, i) => BigInt(i));
    const { rows } = await session.run({ ids: new ort.Tensor('int64', ids, [vocabSize]) });
    await session.release();
    const file = await files.gguf(options);
    const { tensorInfos, tensorDataOffset } = await gguf(file, { allowLocalFile: true });
    const weights = new GgufWeights(presetShape('tiny'), { file, tensors: tensorInfos, dataOffset: tensorDataOffset }, false);
    try {
      expect(rows!.dims).toEqual([vocabSize, hiddenSize]);
      expect(rows!.data).toEqual(weights.floats('token_embd.weight'));
    } finally {
      weights.close();
    }
  });

  it('keeps float tensors float, or quantizes them on request (--precision)', async () => {
    const file = await files.gguf({ architecture: 'llama', fileType: 'F32', tokenizer: 'spm' });
    const fp32 = path.join(files.dir, 'f32-as-fp32');
    const int8 = path.join(files.dir, 'f32-as-int8');
    const result = await importGgufFile(file, { outDir: fp32 });
    expect(result.tensors).toEqual([{ type: 'F32', count: 30, treatment: 'float' }]);
    await importGgufFile(file, { outDir: int8, floatPrecision: 'int8' });
    const size = async (dir: string) => (await readManifest(dir)).files.reduce((sum, f) => sum + f.size, 0);
    // The matrices shrink 4x; the fp32 embedding table and rotary caches stay.
    expect(await size(int8)).toBeLessThan((await size(fp32)) / 2);
    expect(await greedy(int8, 'Hello world')).toHaveLength(12);
  });
});

describe('refusals name what is unsupported', () => {
  it('an architecture other than llama and qwen2', async () => {
    const file = await patched(await files.gguf({ architecture: 'llama', fileType: 'Q4_0', tokenizer: 'spm' }), 'general.architecture', 'llama', 'gemma');
    await expect(importGgufFile(file, { outDir: path.join(files.dir, 'gemma') })).rejects.toThrow(
      new GgufImportError('unsupported_architecture', 'GGUF architecture "gemma" is not supported; supported: llama (Llama 2/3, Mistral), qwen2 (Qwen2, Qwen2.5)'),
    );
  });

  it('a pre-tokenizer whose regex aigw does not know', async () => {
    const file = path.join(files.dir, 'deepseek-pre.gguf');
    const shape = presetShape('tiny');
    await writeGgufModel({ file, shape, seed: 1, architecture: 'qwen2', fileType: 'Q4_0', vocab: await byteLevelVocab(shape.vocabSize, 'deepseek-llm') });
    await expect(importGgufFile(file, { outDir: path.join(files.dir, 'deepseek') })).rejects.toThrow(/pre-tokenizer "deepseek-llm" is not supported; supported: qwen2, llama-bpe, gpt-2/);
  });

  it('a tensor type without a decoder', async () => {
    // Tensor type ids follow the tensor's name and dims; Q4_0 (2) becomes Q4_1 (3) for blk.0.attn_q.
    const source = await files.gguf({ architecture: 'qwen2', fileType: 'Q4_0', tokenizer: 'bpe-qwen2' });
    const bytes = await readFile(source);
    const name = Buffer.from('blk.0.attn_q.weight');
    const typeAt = bytes.indexOf(name) + name.length + 4 + 2 * 8;
    expect(bytes.readUInt32LE(typeAt)).toBe(2);
    bytes.writeUInt32LE(3, typeAt);
    const file = path.join(files.dir, 'q4_1.gguf');
    await writeFile(file, bytes);
    await expect(importGgufFile(file, { outDir: path.join(files.dir, 'q4_1') })).rejects.toThrow(/GGUF tensors of type Q4_1 are not supported/);
  });

  it('a truncated download, and a folder that already exists', async () => {
    const source = await files.gguf({ architecture: 'qwen2', fileType: 'Q4_0', tokenizer: 'bpe-qwen2' });
    const file = path.join(files.dir, 'truncated.gguf');
    await writeFile(file, await readFile(source));
    await truncate(file, 2_000_000);
    await expect(importGgufFile(file, { outDir: path.join(files.dir, 'truncated') })).rejects.toThrow(/ends inside tensor .*; the download is incomplete/);
    await expect(importGgufFile(source, { outDir: files.dir })).rejects.toThrow(/already exists/);
  });
});

it('runs as `aigw models import` and, through the alias, `aigw model import`', async () => {
  const file = await files.gguf({ architecture: 'qwen2', fileType: 'Q4_0', tokenizer: 'bpe-qwen2' });
  const out = path.join(files.dir, 'from-cli');
  const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  try {
    const program = new Command('aigw').exitOverride().addCommand(modelsCommand());
    await program.parseAsync(['model', 'import', file, '--out', out, '--name', 'tiny-qwen'], { from: 'user' });
    expect(log.mock.calls.join('\n')).toMatch(/imported tiny-qwen@1 \(qwen2; 30 Q4_0 repacked\) into .*from-cli/);
    await program.parseAsync(['models', 'import', file, '--out', `${out}-fp32`, '--layout', 'optimum', '--accuracy-level', '0'], { from: 'user' });
  } finally {
    log.mockRestore();
  }
  expect(await readManifest(out)).toMatchObject({ name: 'tiny-qwen', layout: 'genai' });
  expect((await readManifest(`${out}-fp32`)).layout).toBe('optimum');
  const { model } = await readOnnxModel(path.join(`${out}-fp32`, 'onnx/model.onnx'));
  const levels = model.graph!.node!.filter((n) => n.opType === 'MatMulNBits').map((n) => Number(n.attribute!.find((a) => a.name === 'accuracy_level')!.i));
  expect(new Set(levels)).toEqual(new Set([0]));
});
