// Named model shapes: `tiny` for tests and the local demo, `bench` (Qwen2-0.5B-sized, small vocabulary)
// and `qwen0.5b` (Qwen2.5-0.5B's exact shapes, tied 151,936-token embeddings) for benchmarks.
import type { LlamaShape } from './weights.js';

export type PresetName = 'tiny' | 'bench' | 'qwen0.5b';

// About 416M parameters (1.7 GB in fp32).
const BENCH: Readonly<LlamaShape> = {
  hiddenSize: 896,
  numLayers: 24,
  numHeads: 14,
  numKvHeads: 2,
  headDim: 64,
  intermediateSize: 4864,
  vocabSize: 32768,
  contextLength: 4096,
  ropeTheta: 1e6,
  rmsNormEps: 1e-6,
};

export const PRESETS: Readonly<Record<PresetName, Readonly<LlamaShape>>> = {
  // About 4M parameters.
  tiny: {
    hiddenSize: 256,
    numLayers: 4,
    numHeads: 8,
    numKvHeads: 2,
    headDim: 32,
    intermediateSize: 704,
    vocabSize: 2048,
    contextLength: 2048,
    ropeTheta: 10000,
    rmsNormEps: 1e-5,
  },
  bench: BENCH,
  // Qwen2.5-0.5B's config.json (494M parameters): the tied 151,936 x 896 table is a quarter of them and,
  // as lm_head, the largest single read of every decode step.
  'qwen0.5b': {
    ...BENCH,
    vocabSize: 151936,
    contextLength: 32768,
    tieWordEmbeddings: true,
  },
};

export function isPresetName(name: string): name is PresetName {
  return Object.hasOwn(PRESETS, name);
}

/** A fresh copy of a preset's shape. */
export function presetShape(name: PresetName): LlamaShape {
  return { ...PRESETS[name] };
}
