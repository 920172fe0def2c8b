import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { EngineError, UnsupportedModelError } from './errors.js';

/**
 * The names and KV-cache geometry of a decoder graph, read from the session itself rather
 * than guessed, so both public export layouts (and renamed variants) drive the same loop.
 */
export interface DecoderIo {
  inputIds: string;
  attentionMask?: string;
  positionIds?: string;
  /** Element types of the integer inputs, from the session metadata (exports use int64 or int32). */
  inputIdsType: IntegerType;
  attentionMaskType: IntegerType;
  positionIdsType: IntegerType;
  logits: string;
  /** One entry per layer, in layer order. */
  layers: { pastKey: string; pastValue: string; presentKey: string; presentValue: string }[];
  kvHeads: number;
  headDim: number;
  kvType: 'float32' | 'float16';
  /** Logits rows the graph returns per run: 1 when it keeps only the last position. */
  logitsRowsFixed?: number;
  /**
   * true: past and present are one max-length buffer per layer, updated in place (onnxruntime-genai
   * with search.past_present_share_buffer); false: present = concat(past, new), fed back each step.
   */
  sharedKvBuffer: boolean;
}

export type IntegerType = 'int64' | 'int32';

export interface DecoderIoHints {
  /** Name templates with `%d` for the layer, e.g. genai_config's `past_key_names`. */
  pastKeyTemplate?: string;
  pastValueTemplate?: string;
  presentKeyTemplate?: string;
  presentValueTemplate?: string;
  /** From the model config, used when the graph's KV dims are symbolic. */
  kvHeads?: number;
  headDim?: number;
  /** genai_config's search.past_present_share_buffer; absent (Optimum exports) means a growing cache. */
  sharedKvBuffer?: boolean;
}

const PAST_PATTERN = /^past_key_values\.(\d+)\.(key|value)$/;
const PRESENT_PATTERN = /^present\.(\d+)\.(key|value)$/;

export function readDecoderIo(session: InferenceSession, hints: DecoderIoHints = {}): DecoderIo {
  const inputs = new Set(session.inputNames);
  const outputs = new Set(session.outputNames);
  const require = (names: Set<string>, name: string, what: string): string => {
    if (!names.has(name)) {
      throw new EngineError('model_incompatible', `the decoder graph has no ${what} named "${name}"`);
    }
    return name;
  };

  rejectOutOfScope(session);
  const layerNames = collectLayerNames(session, hints);
  if (layerNames.length === 0) {
    throw new EngineError(
      'model_incompatible',
      'the decoder graph has no past_key_values.N.key/value inputs: only decoder-only models with a KV cache are supported',
    );
  }

  const firstPast = metadataOf(session.inputMetadata, layerNames[0]!.pastKey);
  const kvHeads = numericDim(firstPast?.shape[1]) ?? hints.kvHeads;
  const headDim = numericDim(firstPast?.shape[3]) ?? hints.headDim;
  if (kvHeads === undefined || headDim === undefined) {
    throw new EngineError('model_incompatible', 'cannot tell the KV head count and head size from the graph or the model config');
  }
  const kvType = firstPast?.type ?? 'float32';
  if (kvType !== 'float32' && kvType !== 'float16') {
    throw new EngineError('model_incompatible', `the KV cache "${layerNames[0]!.pastKey}" is ${kvType}; aigw runs float32 and float16 caches`);
  }

  const logits = require(outputs, 'logits', 'output');
  const logitsMeta = metadataOf(session.outputMetadata, logits);
  if (logitsMeta && logitsMeta.type !== 'float32' && logitsMeta.type !== 'float16') {
    throw new EngineError('model_incompatible', `the logits output is ${logitsMeta.type}; aigw reads float32 and float16 logits`);
  }
  const inputIds = require(inputs, 'input_ids', 'input');
  const attentionMask = inputs.has('attention_mask') ? 'attention_mask' : undefined;
  const positionIds = inputs.has('position_ids') ? 'position_ids' : undefined;
  return {
    inputIds,
    attentionMask,
    positionIds,
    inputIdsType: integerTypeOf(session, inputIds),
    attentionMaskType: attentionMask ? integerTypeOf(session, attentionMask) : 'int64',
    positionIdsType: positionIds ? integerTypeOf(session, positionIds) : 'int64',
    logits,
    layers: layerNames,
    kvHeads,
    headDim,
    kvType,
    logitsRowsFixed: numericDim(logitsMeta?.shape[1]),
    sharedKvBuffer: hints.sharedKvBuffer ?? false,
  };
}

function integerTypeOf(session: InferenceSession, name: string): IntegerType {
  const type = metadataOf(session.inputMetadata, name)?.type ?? 'int64';
  if (type !== 'int64' && type !== 'int32') {
    throw new EngineError('model_incompatible', `the decoder input "${name}" is ${type}; aigw feeds int64 or int32 ids`);
  }
  return type;
}

// Inputs that mark model families outside a KV-cached token decoder, with what the user can do.
const GPT2_COMBINED_PAST = /^past_\d+$/;
const RECURRENT_STATE = /(^|[._])(conv|ssm|recurrent|rwkv|mamba|state|states|cache_params)([._\d]|$)/i;

function rejectOutOfScope(session: InferenceSession): void {
  const inputs = session.inputNames;
  const combined = inputs.find((n) => GPT2_COMBINED_PAST.test(n));
  if (combined) {
    throw new UnsupportedModelError(
      'combined_past_cache',
      `the decoder takes combined key/value caches ("${combined}", the old GPT-2 past_%d layout), which aigw does not support; ` +
        're-export it with Optimum (past_key_values.N.key / past_key_values.N.value)',
    );
  }
  const state = inputs.find((n) => RECURRENT_STATE.test(n));
  if (state) {
    throw new UnsupportedModelError(
      'recurrent_state',
      `the decoder takes recurrent or convolution state ("${state}": a Mamba/RWKV/LFM2-style model), which aigw does not support; ` +
        'it serves attention decoders with a KV cache only',
    );
  }
  if (!inputs.includes('input_ids') && inputs.includes('inputs_embeds')) {
    throw new UnsupportedModelError(
      'inputs_embeds_only',
      'the decoder takes inputs_embeds and no input_ids (the text half of a multimodal export), which aigw does not support; ' +
        'serve an export whose decoder embeds token ids itself',
    );
  }
}

function collectLayerNames(session: InferenceSession, hints: DecoderIoHints): DecoderIo['layers'] {
  if (hints.pastKeyTemplate) {
    const layers: DecoderIo['layers'] = [];
    const name = (template: string | undefined, fallback: string, i: number) => (template ?? fallback).replace('%d', String(i));
    for (let i = 0; session.inputNames.includes(name(hints.pastKeyTemplate, '', i)); i++) {
      layers.push({
        pastKey: name(hints.pastKeyTemplate, '', i),
        pastValue: name(hints.pastValueTemplate, 'past_key_values.%d.value', i),
        presentKey: name(hints.presentKeyTemplate, 'present.%d.key', i),
        presentValue: name(hints.presentValueTemplate, 'present.%d.value', i),
      });
    }
    assertNamesExist(session, layers);
    return layers;
  }

  const count = session.inputNames.filter((n) => PAST_PATTERN.test(n)).length / 2;
  const layers: DecoderIo['layers'] = [];
  for (let i = 0; i < count; i++) {
    layers.push({
      pastKey: `past_key_values.${i}.key`,
      pastValue: `past_key_values.${i}.value`,
      presentKey: `present.${i}.key`,
      presentValue: `present.${i}.value`,
    });
  }
  assertNamesExist(session, layers);
  if (session.outputNames.filter((n) => PRESENT_PATTERN.test(n)).length !== count * 2) {
    throw new EngineError('model_incompatible', 'the decoder graph has a different number of past and present KV tensors');
  }
  return layers;
}

function assertNamesExist(session: InferenceSession, layers: DecoderIo['layers']): void {
  for (const layer of layers) {
    for (const name of [layer.pastKey, layer.pastValue]) {
      if (!session.inputNames.includes(name)) throw new EngineError('model_incompatible', `the decoder graph has no input "${name}"`);
    }
    for (const name of [layer.presentKey, layer.presentValue]) {
      if (!session.outputNames.includes(name)) throw new EngineError('model_incompatible', `the decoder graph has no output "${name}"`);
    }
  }
}

function metadataOf(
  metadata: readonly InferenceSession.ValueMetadata[],
  name: string,
): { shape: ReadonlyArray<number | string>; type: Tensor.Type } | undefined {
  const entry = metadata.find((m) => m.name === name);
  return entry && entry.isTensor ? { shape: entry.shape, type: entry.type } : undefined;
}

function numericDim(dim: number | string | undefined): number | undefined {
  return typeof dim === 'number' && dim > 0 ? dim : undefined;
}
