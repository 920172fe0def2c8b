// transformers.js v4 loads the builder's Optimum-layout package as a Hugging Face export and
// greedy-decodes; its tokens must equal ours, which proves the package is a faithful HF/Optimum export.
import path from 'node:path';
import { AutoModelForCausalLM, AutoTokenizer, type PreTrainedModel, type PreTrainedTokenizer, Tensor, env } from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoadedModel, generate, loadModel, unloadAllModels } from '../../src/engine/index.js';
import type { ModelPrecision } from '../../tools/model-builder/llama-ops.js';
import { ensureTestModel } from '../helpers/test-models.js';

const NEW_TOKENS = 24;
const MESSAGES = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: 'Tell me about the city library and when it opens.' },
];

describe.each([
  { precision: 'fp32' as ModelPrecision, dtype: 'fp32' as const },
  { precision: 'int8' as ModelPrecision, dtype: 'int8' as const },
  { precision: 'int4' as ModelPrecision, dtype: 'q4' as const },
])('transformers.js on the optimum $precision package (dtype $dtype)', ({ precision, dtype }) => {
  let engineModel: LoadedModel;
  let tokenizer: PreTrainedTokenizer;
  let model: PreTrainedModel;

  beforeAll(async () => {
    const dir = await ensureTestModel({ layout: 'optimum', precision, preset: 'tiny' });
    // Local folder only: the model id is the package folder's name under localModelPath.
    env.allowRemoteModels = false;
    env.useFSCache = false;
    env.localModelPath = path.dirname(dir);
    const id = path.basename(dir);
    tokenizer = await AutoTokenizer.from_pretrained(id, { local_files_only: true });
    model = await AutoModelForCausalLM.from_pretrained(id, { local_files_only: true, dtype, device: 'cpu' });
    engineModel = await loadModel(dir, { threads: 1 });
  });

  afterAll(async () => {
    await model?.dispose();
    await unloadAllModels();
  });

  it('renders and encodes the chat prompt to the same ids as our tokenizer and template', () => {
    const theirs = tokenizer.apply_chat_template(MESSAGES, {
      add_generation_prompt: true,
      tokenize: true,
      return_tensor: false,
      return_dict: false,
    });
    expect(theirs).toEqual(engineModel.encodeChat(MESSAGES));
  });

  it(`greedy-decodes the same ${NEW_TOKENS} tokens as our engine`, async () => {
    const promptIds = engineModel.encodeChat(MESSAGES);
    const output = (await model.generate({
      input_ids: new Tensor('int64', BigInt64Array.from(promptIds, BigInt), [1, promptIds.length]),
      attention_mask: new Tensor('int64', new BigInt64Array(promptIds.length).fill(1n), [1, promptIds.length]),
      max_new_tokens: NEW_TOKENS,
      do_sample: false,
    })) as Tensor;
    const all = (output.tolist() as bigint[][])[0].map(Number);
    expect(all.slice(0, promptIds.length)).toEqual(promptIds);
    const theirs = all.slice(promptIds.length);

    const ours: number[] = [];
    let finishReason: string | undefined;
    for await (const event of generate(engineModel, promptIds, { temperature: 0, maxTokens: NEW_TOKENS })) {
      if (event.type === 'token') ours.push(event.tokenId);
      else finishReason = event.finishReason;
    }
    if (finishReason === 'length') {
      expect(ours).toHaveLength(NEW_TOKENS);
      expect(theirs).toEqual(ours);
    } else {
      // The engine ends the turn at an end-of-sequence id without emitting it; transformers.js keeps it.
      expect(engineModel.eosTokenIds.has(theirs[theirs.length - 1])).toBe(true);
      expect(theirs.slice(0, -1)).toEqual(ours);
    }
  });
});
