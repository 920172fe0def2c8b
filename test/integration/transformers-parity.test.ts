// transformers.js v4 loads the builder's Optimum-layout package as a Hugging Face export and
// greedy-decodes; its tokens must equal ours, which proves the package is a faithful HF/Optimum export.
import path from 'node:path';
import { AutoModelForCausalLM, AutoTokenizer, type PreTrainedModel, type PreTrainedTokenizer, Tensor, env } from '@huggingface/transformers';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeChat } from '../../src/engine/chat-template.js';
import { type ModelTokenizer, loadTokenizer } from '../../src/engine/tokenizer.js';
import type { ModelPrecision } from '../../tools/model-builder/llama-graph.js';
import { onnxFileOf } from '../../tools/model-builder/package-writer.js';
import { ensureTestModel } from '../helpers/test-models.js';

const NEW_TOKENS = 24;
const MESSAGES = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: 'Tell me about the city library and when it opens.' },
];

function int64(values: number[], dims: number[]): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(values, (v) => BigInt(v)), dims);
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** Our greedy loop straight on onnxruntime-node: prefill, then one token a step with the growing cache. */
async function greedyOnnxruntime(onnxPath: string, promptIds: number[], eosIds: ReadonlySet<number>): Promise<number[]> {
  const session = await ort.InferenceSession.create(onnxPath, { intraOpNumThreads: 1 });
  try {
    const pastNames = session.inputNames.filter((name) => name.startsWith('past_key_values.'));
    let past: Record<string, ort.Tensor> = {};
    for (const name of pastNames) {
      const meta = session.inputMetadata.find((m) => m.name === name);
      const dims = meta?.isTensor ? meta.shape : [];
      // [batch, kvHeads, past_sequence_length, headDim]: the symbolic dims start empty.
      past[name] = new ort.Tensor('float32', new Float32Array(0), dims.map((d) => (typeof d === 'number' ? d : d === 'batch_size' ? 1 : 0)));
    }
    const generated: number[] = [];
    let input = promptIds;
    let length = 0;
    while (generated.length < NEW_TOKENS) {
      const total = length + input.length;
      const out = await session.run({
        input_ids: int64(input, [1, input.length]),
        attention_mask: int64(new Array(total).fill(1), [1, total]),
        position_ids: int64(input.map((_, i) => length + i), [1, input.length]),
        ...past,
      });
      const logits = out.logits.data as Float32Array;
      const vocab = out.logits.dims[2];
      const next = argmax(logits.subarray(logits.length - vocab));
      generated.push(next);
      if (eosIds.has(next)) break;
      past = Object.fromEntries(pastNames.map((name) => [name, out[name.replace('past_key_values', 'present')]]));
      length = total;
      input = [next];
    }
    return generated;
  } finally {
    await session.release();
  }
}

describe.each([
  { precision: 'fp32' as ModelPrecision, dtype: 'fp32' as const },
  { precision: 'int8' as ModelPrecision, dtype: 'int8' as const },
  { precision: 'int4' as ModelPrecision, dtype: 'q4' as const },
])('transformers.js on the optimum $precision package (dtype $dtype)', ({ precision, dtype }) => {
  let dir: string;
  let ourTokenizer: ModelTokenizer;
  let tokenizer: PreTrainedTokenizer;
  let model: PreTrainedModel;

  beforeAll(async () => {
    dir = await ensureTestModel({ layout: 'optimum', precision, preset: 'tiny' });
    // Local folder only: the model id is the package folder's name under localModelPath.
    env.allowRemoteModels = false;
    env.useFSCache = false;
    env.localModelPath = path.dirname(dir);
    const id = path.basename(dir);
    tokenizer = await AutoTokenizer.from_pretrained(id, { local_files_only: true });
    model = await AutoModelForCausalLM.from_pretrained(id, { local_files_only: true, dtype, device: 'cpu' });
    ourTokenizer = await loadTokenizer(dir);
  });

  afterAll(async () => {
    await model?.dispose();
  });

  it('renders and encodes the chat prompt to the same ids as our tokenizer and template', () => {
    const theirs = tokenizer.apply_chat_template(MESSAGES, {
      add_generation_prompt: true,
      tokenize: true,
      return_tensor: false,
      return_dict: false,
    });
    expect(theirs).toEqual(encodeChat(ourTokenizer, MESSAGES));
  });

  it(`greedy-decodes the same ${NEW_TOKENS} tokens as our onnxruntime loop`, async () => {
    const promptIds = encodeChat(ourTokenizer, MESSAGES);
    const output = (await model.generate({
      input_ids: new Tensor('int64', BigInt64Array.from(promptIds, BigInt), [1, promptIds.length]),
      attention_mask: new Tensor('int64', new BigInt64Array(promptIds.length).fill(1n), [1, promptIds.length]),
      max_new_tokens: NEW_TOKENS,
      do_sample: false,
    })) as Tensor;
    const all = (output.tolist() as bigint[][])[0].map(Number);
    expect(all.slice(0, promptIds.length)).toEqual(promptIds);
    const theirs = all.slice(promptIds.length);

    const eos = new Set(ourTokenizer.eosTokenIds);
    const ours = await greedyOnnxruntime(path.join(dir, onnxFileOf('optimum', precision)), promptIds, eos);
    expect(theirs).toEqual(ours);
    // The comparison covers the whole budget unless the model chose to end its turn.
    expect(ours.length === NEW_TOKENS || eos.has(ours[ours.length - 1])).toBe(true);
  });
});
