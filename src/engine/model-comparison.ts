// How far a rewritten model (e.g. `aigw models optimize`'s output) strays from the original: greedy
// agreement and logit error on a fixed prompt set, run in lockstep, and the decode speed of both.
import { createDecoderState } from './decoder-state.js';
import { generate } from './generate.js';
import type { LoadedModel } from './model.js';
import { argmax } from './sampler.js';

/** Fixed prompts of different kinds: prose, a list, code, a question, other scripts. */
export const COMPARISON_PROMPTS: readonly string[] = [
  'The city library opens at nine in the morning and closes at six in the evening.',
  'Ingredients: two cups of flour, one egg, a pinch of salt, and',
  'function add(a, b) {\n  return',
  'Q: What is the capital of France?\nA:',
  'Once upon a time, in a small village by the sea, there lived',
  '東京は日本の首都です。そして',
  'Les enfants jouaient dans le jardin quand soudain',
  '1, 1, 2, 3, 5, 8, 13,',
];

export interface ComparisonOptions {
  prompts?: readonly string[];
  /** Greedy positions compared per prompt. Default 16. */
  newTokens?: number;
  /** Tokens decoded per speed run (0 skips the speed measurement). Default 32. */
  speedTokens?: number;
  /** Speed runs per model, alternating; the median counts. Default 3. */
  speedRuns?: number;
}

export interface ModelComparison {
  prompts: number;
  positions: number;
  /** Positions where the candidate's greedy token equals the original's, fed the original's tokens. */
  top1Agreement: number;
  /** Prompts whose whole greedy continuation is identical. */
  identicalContinuations: number;
  /** max|candidate - original| / max|original| over a position's logits: worst and mean over positions. */
  maxRelativeLogitError: number;
  meanRelativeLogitError: number;
  originalMsPerToken?: number;
  candidateMsPerToken?: number;
  /** originalMsPerToken / candidateMsPerToken. */
  speedUp?: number;
}

export async function compareModels(original: LoadedModel, candidate: LoadedModel, options: ComparisonOptions = {}): Promise<ModelComparison> {
  const prompts = options.prompts ?? COMPARISON_PROMPTS;
  const newTokens = options.newTokens ?? 16;
  let agreed = 0;
  let positions = 0;
  let identical = 0;
  let maxError = 0;
  let errorSum = 0;
  for (const prompt of prompts) {
    const ids = original.encodeText(prompt);
    const reference = createDecoderState(original.session, original.io, ids.length + newTokens);
    const rewritten = createDecoderState(candidate.session, candidate.io, ids.length + newTokens);
    let a = await reference.step(ids);
    let b = await rewritten.step(ids);
    let allAgree = true;
    for (let i = 0; i < newTokens; i++) {
      const token = argmax(a);
      const same = argmax(b) === token;
      agreed += same ? 1 : 0;
      allAgree &&= same;
      const error = relativeError(b, a);
      maxError = Math.max(maxError, error);
      errorSum += error;
      positions++;
      if (i + 1 < newTokens) {
        // Both are fed the original's token: teacher-forced, so one early miss does not count twice.
        a = await reference.step([token]);
        b = await rewritten.step([token]);
      }
    }
    identical += allAgree ? 1 : 0;
  }
  const result: ModelComparison = {
    prompts: prompts.length,
    positions,
    top1Agreement: agreed / positions,
    identicalContinuations: identical,
    maxRelativeLogitError: maxError,
    meanRelativeLogitError: errorSum / positions,
  };
  const speedTokens = options.speedTokens ?? 32;
  if (speedTokens > 1) {
    const ids = original.encodeText(prompts[0]!);
    const originalRuns: number[] = [];
    const candidateRuns: number[] = [];
    await decodeMsPerToken(original, ids, 4);
    await decodeMsPerToken(candidate, ids, 4);
    for (let run = 0; run < (options.speedRuns ?? 3); run++) {
      originalRuns.push(await decodeMsPerToken(original, ids, speedTokens));
      candidateRuns.push(await decodeMsPerToken(candidate, ids, speedTokens));
    }
    result.originalMsPerToken = median(originalRuns);
    result.candidateMsPerToken = median(candidateRuns);
    result.speedUp = result.originalMsPerToken / result.candidateMsPerToken;
  }
  return result;
}

function relativeError(actual: Float32Array, expected: Float32Array): number {
  let maxDiff = 0;
  let maxRef = 0;
  const size = Math.min(actual.length, expected.length);
  for (let i = 0; i < size; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i]! - expected[i]!));
    maxRef = Math.max(maxRef, Math.abs(expected[i]!));
  }
  return maxRef === 0 ? maxDiff : maxDiff / maxRef;
}

/** Greedy decode time per token after the first. */
async function decodeMsPerToken(model: LoadedModel, ids: number[], tokens: number): Promise<number> {
  const stamps: number[] = [];
  for await (const event of generate(model, ids, { temperature: 0, maxTokens: tokens, ignoreEos: true })) {
    if (event.type === 'token') stamps.push(performance.now());
  }
  return (stamps.at(-1)! - stamps[0]!) / (stamps.length - 1);
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)]!;
}
