// Each ONNX export variant real exports come in, written by the builder, loaded by the engine as the
// export describes itself (genai_config, session metadata) and greedy-decoded: the tokens must equal
// the float64 reference forward pass on the same weights.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDecoderState } from '../../src/engine/decoder-state.js';
import { generate, loadModel, unloadAllModels, type LoadedModel } from '../../src/engine/index.js';
import { argmax } from '../../src/engine/sampler.js';
import type { ExportIoVariant, ModelLayout } from '../../tools/model-builder/llama-ops.js';
import { presetShape } from '../../tools/model-builder/presets.js';
import { makeSeededWeights } from '../../tools/model-builder/weights.js';
import { referenceGreedy } from '../helpers/reference-llama.js';
import { TEST_MODEL_SEED, ensureTestModel } from '../helpers/test-models.js';

const SHAPE = presetShape('tiny');
const PROMPT = Array.from({ length: 12 }, (_, i) => (i * 577 + 31) % SHAPE.vocabSize);
const NEW_TOKENS = 16;

const referenceTokens = referenceGreedy(makeSeededWeights(SHAPE, TEST_MODEL_SEED), PROMPT, NEW_TOKENS);

async function greedyTokens(model: LoadedModel): Promise<number[]> {
  const tokens: number[] = [];
  for await (const event of generate(model, PROMPT, { temperature: 0, maxTokens: NEW_TOKENS, ignoreEos: true })) {
    if (event.type === 'token') tokens.push(event.tokenId);
  }
  return tokens;
}

interface Variant {
  name: string;
  layout: ModelLayout;
  io?: ExportIoVariant;
  sharedKvBuffer?: boolean;
  attention?: 'MultiHeadAttention';
  /** What the engine must have read from the export. */
  expectIo: Partial<LoadedModel['io']>;
}

const VARIANTS: Variant[] = [
  {
    name: 'onnxruntime-genai, past_present_share_buffer true (shared max-length buffer)',
    layout: 'genai',
    expectIo: { sharedKvBuffer: true, inputIdsType: 'int64' },
  },
  {
    name: 'onnxruntime-genai, past_present_share_buffer false (growing cache, as builder.py writes for MHA exports)',
    layout: 'genai',
    sharedKvBuffer: false,
    expectIo: { sharedKvBuffer: false },
  },
  {
    name: 'onnxruntime-genai MultiHeadAttention (RotaryEmbedding, KV heads repeated), past_present_share_buffer false',
    layout: 'genai',
    sharedKvBuffer: false,
    attention: 'MultiHeadAttention',
    // The cache holds the repeated heads: the graph's own past shape says how many.
    expectIo: { sharedKvBuffer: false, kvHeads: SHAPE.numHeads },
  },
  {
    name: 'onnxruntime-genai with int32 input_ids/attention_mask and float16 logits',
    layout: 'genai',
    io: { idsType: 'int32', logitsType: 'float16' },
    expectIo: { sharedKvBuffer: true, inputIdsType: 'int32', attentionMaskType: 'int32' },
  },
  {
    name: 'Optimum, int64 ids with position_ids',
    layout: 'optimum',
    expectIo: { sharedKvBuffer: false, positionIds: 'position_ids', kvType: 'float32' },
  },
  {
    name: 'Optimum, int32 input_ids/attention_mask/position_ids',
    layout: 'optimum',
    io: { idsType: 'int32' },
    expectIo: { inputIdsType: 'int32', attentionMaskType: 'int32', positionIdsType: 'int32' },
  },
  {
    name: 'Optimum without position_ids',
    layout: 'optimum',
    io: { positionIds: false },
    expectIo: { positionIds: undefined },
  },
  {
    name: 'Optimum with a float16 KV cache and float16 logits',
    layout: 'optimum',
    io: { kvType: 'float16', logitsType: 'float16' },
    expectIo: { kvType: 'float16' },
  },
];

const models = new Map<string, LoadedModel>();

beforeAll(async () => {
  for (const variant of VARIANTS) {
    const dir = await ensureTestModel({ layout: variant.layout, precision: 'fp32', io: variant.io, sharedKvBuffer: variant.sharedKvBuffer, attention: variant.attention });
    models.set(variant.name, await loadModel(dir, { threads: 1 }));
  }
});

afterAll(unloadAllModels);

describe('ONNX export variants', () => {
  it('the float64 reference continuation is not degenerate', () => {
    expect(new Set(referenceTokens).size).toBeGreaterThan(3);
  });

  for (const variant of VARIANTS) {
    it(`${variant.name}: reads the export's own description and greedy-decodes the reference's tokens`, async () => {
      const model = models.get(variant.name)!;
      expect(model.io).toMatchObject(variant.expectIo);
      expect(await greedyTokens(model)).toEqual(referenceTokens);
      // A second sequence on the same session starts from an empty cache.
      expect(await greedyTokens(model)).toEqual(referenceTokens);
    });
  }

  it('a shared KV buffer holds the tokens plus a fixed room and grows by that room, whatever the room allowed', async () => {
    const model = models.get(VARIANTS[0]!.name)!;
    expect(model.io.sharedKvBuffer).toBe(true);
    // Room for the whole context, as a request without max_tokens allows; 4 positions of growth
    // (128 by default) so that 16 tokens grow the buffers three times.
    const state = createDecoderState(model.session, model.io, model.manifest.contextLength, 4);
    let logits = await state.step(PROMPT);
    const capacities = [state.capacity];
    const tokens: number[] = [];
    for (let i = 0; i < NEW_TOKENS; i++) {
      tokens.push(argmax(logits));
      logits = await state.step([tokens.at(-1)!]);
      capacities.push(state.capacity);
    }
    // The copies made at each growth keep every cached position: the reference's tokens.
    expect(tokens).toEqual(referenceTokens);
    expect(state.length).toBe(PROMPT.length + NEW_TOKENS);
    expect([...new Set(capacities)]).toEqual([16, 21, 26, 31]);
  });

  it('a shared KV buffer never grows past the room the request allows', async () => {
    const model = models.get(VARIANTS[0]!.name)!;
    const maxLength = PROMPT.length + 6;
    const state = createDecoderState(model.session, model.io, maxLength);
    let logits = await state.step(PROMPT);
    expect(state.capacity).toBe(maxLength);
    for (let i = 0; i < 6; i++) logits = await state.step([argmax(logits)]);
    expect(state.capacity).toBe(maxLength);
    await expect(state.step([argmax(logits)])).rejects.toMatchObject({ code: 'context_length_exceeded' });
  });
});
