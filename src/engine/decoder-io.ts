import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { EngineError } from './errors.js';

/**
 * The names and KV-cache geometry of a decoder graph, read from the session itself rather
 * than guessed, so both public export layouts (and renamed variants) drive the same loop.
 */
export interface DecoderIo {
  inputIds: string;
  attentionMask?: string;
  positionIds?: string;
  logits: string;
  /** One entry per layer, in layer order. */
  layers: { pastKey: string; pastValue: string; presentKey: string; presentValue: string }[];
  kvHeads: number;
  headDim: number;
  kvType: 'float32' | 'float16';
  /** Logits rows the graph returns per run: 1 when it keeps only the last position. */
  logitsRowsFixed?: number;
}

export interface DecoderIoHints {
  /** Name templates with `%d` for the layer, e.g. genai_config's `past_key_names`. */
  pastKeyTemplate?: string;
  pastValueTemplate?: string;
  presentKeyTemplate?: string;
  presentValueTemplate?: string;
  /** From the model config, used when the graph's KV dims are symbolic. */
  kvHeads?: number;
  headDim?: number;
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
  const kvType = firstPast?.type === 'float16' ? 'float16' : 'float32';

  const logits = require(outputs, 'logits', 'output');
  const logitsMeta = metadataOf(session.outputMetadata, logits);
  return {
    inputIds: require(inputs, 'input_ids', 'input'),
    attentionMask: inputs.has('attention_mask') ? 'attention_mask' : undefined,
    positionIds: inputs.has('position_ids') ? 'position_ids' : undefined,
    logits,
    layers: layerNames,
    kvHeads,
    headDim,
    kvType,
    logitsRowsFixed: numericDim(logitsMeta?.shape[1]),
  };
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
