// Sampler benchmark (npm run bench:sampler): one step's choice of the next token from a
// vocabulary's logits, aigw's sampler against transformers.js's sampling step on the same logits.
// The logits spread like the random-weight benchmark models' (a normal distribution with standard
// deviation 3), where top_p 0.9 leaves tens of thousands of candidates: the sampler's worst case,
// and the one bench:engine's sampling rows pay. Results go to bench/results/sampler.json and a table.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tensor, TemperatureLogitsWarper, softmax, topk } from '@huggingface/transformers';
import { createSampler, type SamplingParams } from '../src/engine/sampler.js';
import { seededNormal } from '../tools/model-builder/weights.js';
import { median } from './alternate.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const VOCABULARIES = [32_768, 151_936];
const LOGIT_SETS = 16;
const DRAWS_PER_ROUND = 100;
const ROUNDS = 15;
const NO_CONTEXT = { promptIds: [], generatedIds: [] };

interface Case {
  runner: 'aigw' | 'transformers.js';
  mode: string;
  /** Picks one token from the logits; may not keep them unchanged (transformers.js divides them in place). */
  pick(logits: Float32Array): unknown;
}

interface Row {
  vocabulary: number;
  runner: string;
  mode: string;
  msPerDraw: number;
}

function cases(vocabulary: number): Case[] {
  const aigw = (mode: string, params: SamplingParams): Case => {
    const sampler = createSampler({ ...params, seed: 1 }, vocabulary);
    return { runner: 'aigw', mode, pick: (logits) => sampler.sample(logits, NO_CONTEXT) };
  };
  // transformers.js 4.3.2's step with do_sample, temperature 0.7 and top_k 0, from its exported
  // parts: the temperature warper, top-k over the whole vocabulary (an onnxruntime TopK, which
  // sorts it) and softmax; the weighted draw after it is left out. It applies no top_p at all (its
  // TopPLogitsWarper is a TODO in generation), so one row stands for both of aigw's top_p rows.
  const warper = new TemperatureLogitsWarper(0.7);
  const transformersJs: Case = {
    runner: 'transformers.js',
    mode: 'temperature 0.7 (top_p not applied)',
    pick: async (logits) => {
      const scores = warper._call([], new Tensor('float32', logits, [1, vocabulary]));
      const [values] = await topk(scores, vocabulary);
      return softmax(values.data as Float32Array);
    },
  };
  return [
    aigw('greedy', { temperature: 0 }),
    aigw('temperature 0.7, top_p 1', { temperature: 0.7, topP: 1 }),
    aigw('temperature 0.7, top_p 0.9', { temperature: 0.7, topP: 0.9 }),
    transformersJs,
  ];
}

/** Each case's median time per draw over ROUNDS rounds, the cases taking turns round by round. */
async function measure(vocabulary: number): Promise<Row[]> {
  // Seeded, so every runner and every run gets the same logits.
  const sets = Array.from({ length: LOGIT_SETS }, (_, i) => seededNormal(i + 1, 'logits', vocabulary, 0, 3));
  const all = cases(vocabulary);
  const perRound = new Map<Case, number[]>(all.map((c) => [c, []]));
  for (let round = -1; round < ROUNDS; round++) {
    for (const c of all) {
      // A fresh copy per draw: transformers.js divides its input in place.
      const inputs = Array.from({ length: DRAWS_PER_ROUND }, (_, i) => sets[i % LOGIT_SETS]!.slice());
      const start = performance.now();
      for (const logits of inputs) await c.pick(logits);
      // Round -1 warms up every case (JIT, the TopK session) and is not counted.
      if (round >= 0) perRound.get(c)!.push((performance.now() - start) / DRAWS_PER_ROUND);
    }
  }
  return all.map((c) => ({ vocabulary, runner: c.runner, mode: c.mode, msPerDraw: median(perRound.get(c)!) }));
}

function table(rows: Row[]): string {
  const lines = ['| vocabulary | runner | mode | ms per draw |', '|---:|---|---|---:|'];
  for (const r of rows) lines.push(`| ${r.vocabulary.toLocaleString('en-US')} | ${r.runner} | ${r.mode} | ${r.msPerDraw.toFixed(3)} |`);
  return lines.join('\n');
}

const rows: Row[] = [];
for (const vocabulary of VOCABULARIES) {
  console.error(`sampler: ${vocabulary} logits ...`);
  rows.push(...(await measure(vocabulary)));
}
await mkdir(path.join(ROOT, 'bench', 'results'), { recursive: true });
await writeFile(
  path.join(ROOT, 'bench', 'results', 'sampler.json'),
  `${JSON.stringify({ date: new Date().toISOString(), logits: 'normal, standard deviation 3', drawsPerRound: DRAWS_PER_ROUND, rounds: ROUNDS, rows }, null, 1)}\n`,
);
console.log(table(rows));
