// Differential tests against llama.cpp itself (node-llama-cpp 3.21.1, CPU): the same GGUF file
// tokenized by llama.cpp and by the tokenizer.json aigw converts it to, and greedy-decoded by
// llama.cpp and by aigw's ONNX package imported from it.
import type { Llama, LlamaModel } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate, loadModel, unloadAllModels } from '../../src/engine/index.js';
import { loadTokenizer } from '../../src/engine/tokenizer.js';
import { TestGgufFiles, type TestGgufOptions, type TokenizerKind, loadLlamaCpp } from '../helpers/test-gguf.js';

// English, Chinese, emoji (multi-codepoint sequences included), code, whitespace runs, accents.
const TEXTS = [
  'Hello world! The quick brown fox jumps over the lazy dog.',
  '你好，世界。中文分词测试：我们今天去图书馆看书。',
  'Emoji: 🌊🚀👍🏽 family 👨‍👩‍👧 and a flag 🇫🇷!',
  'function add(a, b) {\n  return a + b; // sum\n}\n\tconst xs = [1, 22, 333, 4444];',
  '   leading spaces, two  spaces,\t\ttabs,\n\n\nnewlines   and trailing   ',
  "It's 3.14159 — naïve café, Ünïcödé; don't, we'll, they've, I'M LOUD",
  'The morning was quiet when the first train left the station.',
];

let files: TestGgufFiles;
let llama: Llama;

beforeAll(async () => {
  files = await TestGgufFiles.create();
  llama = await loadLlamaCpp();
});

afterAll(async () => {
  await unloadAllModels();
  await llama?.dispose();
  await files?.remove();
});

async function withLlamaModel<T>(file: string, run: (model: LlamaModel) => Promise<T>, vocabOnly = false): Promise<T> {
  const model = await llama.loadModel({ modelPath: file, vocabOnly });
  try {
    return await run(model);
  } finally {
    await model.dispose();
  }
}

describe('the converted tokenizer gives llama.cpp\'s ids', () => {
  const kinds: [TokenizerKind, TestGgufOptions['architecture']][] = [
    ['spm', 'llama'],
    ['bpe-qwen2', 'qwen2'],
    ['bpe-llama3', 'llama'],
  ];
  for (const [tokenizer, architecture] of kinds) {
    it(`${tokenizer} (${architecture})`, async () => {
      const options = { architecture, fileType: 'Q4_0', tokenizer } as const;
      const ours = await loadTokenizer(await files.imported(options));
      await withLlamaModel(
        await files.gguf(options),
        async (model) => {
          for (const text of TEXTS) {
            const reference = model.tokenize(text).map(Number);
            const ids = ours.encode(text);
            expect(ids, text).toEqual(reference);
            expect(ours.decode(ids), text).toBe(model.detokenize(reference as never));
          }
        },
        true,
      );
    });
  }
});

const STEPS = 8;

/** Greedy continuations of every text by aigw and by llama.cpp, from the same prompt ids. */
async function greedyBoth(options: TestGgufOptions): Promise<{ aigw: number[][]; llamaCpp: number[][] }> {
  const model = await loadModel(await files.imported(options), { threads: 1 });
  const prompts = TEXTS.map((text) => model.tokenizer.encode(text));
  const aigw: number[][] = [];
  for (const prompt of prompts) {
    const tokens: number[] = [];
    for await (const event of generate(model, prompt, { temperature: 0, maxTokens: STEPS, ignoreEos: true })) {
      if (event.type === 'token') tokens.push(event.tokenId);
    }
    aigw.push(tokens);
  }
  const llamaCpp = await withLlamaModel(await files.gguf(options), async (m) => {
    // An F32 KV cache, so what is left to differ is the arithmetic of the matrix products.
    const context = await m.createContext({ contextSize: 512, threads: 1, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' });
    try {
      const all: number[][] = [];
      for (const prompt of prompts) {
        const sequence = context.getSequence();
        const out: number[] = [];
        for await (const token of sequence.evaluate(prompt as never, { temperature: 0 })) {
          out.push(Number(token));
          if (out.length === STEPS) break;
        }
        sequence.dispose();
        all.push(out);
      }
      return all;
    } finally {
      await context.dispose();
    }
  });
  return { aigw, llamaCpp };
}

/**
 * F32: llama.cpp multiplies f32 by f32 like onnxruntime, so every token must match. Q8_0 and Q4_0:
 * aigw repacks the very same weight values (bit for bit) and, by default, computes as llama.cpp's
 * CPU kernels do, with each activation row quantized to 8 bits in blocks of 32 (MatMulNBits
 * accuracy_level 4; llama.cpp's vec_dot_q4_0_q8_0). The scales (f32 here, f16 in llama.cpp) and the
 * order of the sums differ, which moves logits by a fraction of a percent of their spread: enough
 * to flip a greedy choice only where the top two logits nearly tie, which random-weight tiny models
 * have often, so most continuations, not all, must agree. (Over 48 prompts x 16 tokens, this
 * agreed with llama.cpp as often as fp32 compute did: 130 vs 127 of 192 continuations identical.)
 * Q4_K_M: aigw decodes the K-quant blocks and requantizes them to int4/int8 blocks of 32, which
 * adds about as much weight error as Q4_K has (test/unit/gguf-quants.test.ts), so fewer
 * continuations agree; the first tokens agreeing on most texts shows the K-quant decoding itself
 * is llama.cpp's.
 */
const MIN_AGREEING: Record<string, number> = { F32: TEXTS.length, Q8_0: TEXTS.length - 2, Q4_0: TEXTS.length - 3, Q4_K_M: 1 };

describe('greedy tokens agree with llama.cpp on the same GGUF file', () => {
  for (const architecture of ['llama', 'qwen2'] as const) {
    const tokenizer = architecture === 'llama' ? 'spm' : 'bpe-qwen2';
    for (const fileType of ['F32', 'Q8_0', 'Q4_0', 'Q4_K_M'] as const) {
      it(`${architecture} ${fileType}: at least ${MIN_AGREEING[fileType]} of ${TEXTS.length} continuations identical`, async () => {
        const { aigw, llamaCpp } = await greedyBoth({ architecture, fileType, tokenizer });
        const agreeing = aigw.filter((tokens, i) => tokens.join() === llamaCpp[i].join()).length;
        const firstTokens = aigw.filter((tokens, i) => tokens[0] === llamaCpp[i][0]).length;
        console.log(`${architecture} ${fileType}: ${agreeing}/${TEXTS.length} continuations of ${STEPS} tokens identical, first token ${firstTokens}/${TEXTS.length}`);
        for (const tokens of aigw) expect(tokens).toHaveLength(STEPS);
        if (fileType === 'F32') expect(aigw).toEqual(llamaCpp);
        expect(agreeing).toBeGreaterThanOrEqual(MIN_AGREEING[fileType]);
        expect(firstTokens).toBeGreaterThanOrEqual(fileType === 'Q4_K_M' ? TEXTS.length - 3 : MIN_AGREEING[fileType]);
      });
    }
  }
});
