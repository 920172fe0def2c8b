// Export layouts outside aigw's scope load into a clear, typed error naming the feature, never a
// crash or a confusing failure mid-request: GPT-2's combined past_%d caches, recurrent/conv state
// models, inputs_embeds-only decoders. Each graph has the input/output signature of such an export.
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnsupportedModelError, loadModel, unloadAllModels, type UnsupportedModelFeature } from '../../src/engine/index.js';
import { packModelFolder } from '../../src/models/index.js';
import { DataType, type NodeProto, type ValueInfoProto, attrInt, nodeProto, valueInfo, writeModel } from '../../tools/model-builder/onnx-writer.js';
import { ensureTestModel } from '../helpers/test-models.js';

let scratch: string;
let base: string;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'aigw-unsupported-'));
  base = await ensureTestModel({ layout: 'optimum', precision: 'fp32' });
});

afterAll(async () => {
  await unloadAllModels();
  await rm(scratch, { recursive: true, force: true });
});

const ids = valueInfo('input_ids', DataType.INT64, ['batch', 'seq']);
const mask = valueInfo('attention_mask', DataType.INT64, ['batch', 'total']);
const floatIn = (name: string, dims: (number | string)[]) => valueInfo(name, DataType.FLOAT, dims);
const logitsOut = valueInfo('logits', DataType.FLOAT, ['batch', 'seq', 'vocab']);
const logitsFromIds = nodeProto('Cast', ['input_ids'], ['logits'], [attrInt('to', DataType.FLOAT)]);
const pass = (from: string, to: string) => nodeProto('Identity', [from], [to]);

interface Case {
  feature: UnsupportedModelFeature;
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
  nodes: NodeProto[];
  message: RegExp;
}

const CASES: Record<string, Case> = {
  'GPT-2 combined past_%d caches': {
    feature: 'combined_past_cache',
    inputs: [ids, mask, floatIn('past_0', [2, 'batch', 4, 'past', 16])],
    outputs: [logitsOut, floatIn('present_0', [2, 'batch', 4, 'total', 16])],
    nodes: [logitsFromIds, pass('past_0', 'present_0')],
    message: /combined key\/value caches \("past_0".*past_%d/,
  },
  'recurrent / conv state (LFM2, Mamba style)': {
    feature: 'recurrent_state',
    inputs: [
      ids,
      mask,
      floatIn('past_conv.0', ['batch', 256, 3]),
      floatIn('past_key_values.1.key', ['batch', 2, 'past', 32]),
      floatIn('past_key_values.1.value', ['batch', 2, 'past', 32]),
    ],
    outputs: [
      logitsOut,
      floatIn('present_conv.0', ['batch', 256, 3]),
      floatIn('present.1.key', ['batch', 2, 'total', 32]),
      floatIn('present.1.value', ['batch', 2, 'total', 32]),
    ],
    nodes: [
      logitsFromIds,
      pass('past_conv.0', 'present_conv.0'),
      pass('past_key_values.1.key', 'present.1.key'),
      pass('past_key_values.1.value', 'present.1.value'),
    ],
    message: /recurrent or convolution state \("past_conv\.0"/,
  },
  'inputs_embeds-only decoder': {
    feature: 'inputs_embeds_only',
    inputs: [
      floatIn('inputs_embeds', ['batch', 'seq', 'vocab']),
      mask,
      floatIn('past_key_values.0.key', ['batch', 2, 'past', 32]),
      floatIn('past_key_values.0.value', ['batch', 2, 'past', 32]),
    ],
    outputs: [logitsOut, floatIn('present.0.key', ['batch', 2, 'total', 32]), floatIn('present.0.value', ['batch', 2, 'total', 32])],
    nodes: [
      pass('inputs_embeds', 'logits'),
      pass('past_key_values.0.key', 'present.0.key'),
      pass('past_key_values.0.value', 'present.0.value'),
    ],
    message: /inputs_embeds and no input_ids/,
  },
};

/** A copy of the tiny package whose decoder is replaced by `graph`, repacked so hashes agree. */
async function packageWith(name: string, spec: Case): Promise<string> {
  const dir = path.join(scratch, name.replace(/\W+/g, '-'));
  await cp(base, dir, { recursive: true });
  await writeModel(path.join(dir, 'onnx', 'model.onnx'), { name: 'g', node: spec.nodes, input: spec.inputs, output: spec.outputs });
  await rm(path.join(dir, 'onnx', 'model.onnx_data'), { force: true });
  await packModelFolder(dir, { name, version: '1', onnxFile: 'onnx/model.onnx' });
  return dir;
}

describe('out-of-scope export layouts', () => {
  for (const [name, spec] of Object.entries(CASES)) {
    it(`${name}: a typed error naming the feature`, async () => {
      const dir = await packageWith(name, spec);
      const error = await loadModel(dir, { threads: 1 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(UnsupportedModelError);
      expect(error).toMatchObject({ code: 'model_incompatible', feature: spec.feature });
      expect((error as Error).message).toMatch(spec.message);
    });
  }
});
