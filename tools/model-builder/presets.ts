// Named model shapes: `tiny` for tests and the local demo, `bench` (Qwen2-0.5B-sized) for benchmarks.
import type { LlamaShape } from './weights.js';

export type PresetName = 'tiny' | 'bench';

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
  // About 416M parameters (1.7 GB in fp32).
  bench: {
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
  },
};

export function isPresetName(name: string): name is PresetName {
  return Object.hasOwn(PRESETS, name);
}

/** A fresh copy of a preset's shape. */
export function presetShape(name: PresetName): LlamaShape {
  return { ...PRESETS[name] };
}
