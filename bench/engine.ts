// Engine benchmark (npm run bench:engine): aigw's engine against transformers.js on the same
// files and against a bare session.run loop (the floor), on the 0.5B-shaped `bench` preset: the
// Optimum layout as built, the same package after `aigw models optimize`, and the genai layout.
// Each case runs in its own process; results go to bench/results/engine.json and a table.
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTokenizer } from '../src/engine/tokenizer.js';
import { optimizeModelPackage } from '../src/models/index.js';
import { pathExists } from '../src/models/package-files.js';
import { buildModelPackage } from '../tools/model-builder/index.js';
import { presetShape } from '../tools/model-builder/presets.js';
import { runOptimizedSection } from './engine-optimized.js';
import { ggufPeerRows, ggufPeerTable } from './gguf-peer.js';
import { machineInfo } from './machine.js';
import { runCase } from './engine-run-case.js';
import type { CaseResult, Mode, Runner } from './engine-worker.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const MODELS = path.join(ROOT, 'bench', 'models');
const PROMPT_TOKENS = 128;
const NEW_TOKENS = 128;
const THREADS = 2;
const REPEATS = 5;
// Each case runs in this many fresh processes, taken in turns, and their medians are averaged:
// process-to-process variation on this machine is larger than the differences measured.
const PROCESSES = 2;

/** One package of the `bench` weights: a layout as built, or the Optimum one after `aigw models optimize`. */
interface BenchPackage {
  label: string;
  layout: 'optimum' | 'genai';
  optimized: boolean;
}

const PACKAGES: BenchPackage[] = [
  { label: 'optimum', layout: 'optimum', optimized: false },
  // accuracy_level 4 (int8 activations); the lm_head is int4 already, so that is all the pass changes.
  { label: 'optimum, optimized', layout: 'optimum', optimized: true },
  { label: 'genai', layout: 'genai', optimized: false },
];

interface Row extends CaseResult {
  layout: string;
  mode: Mode | 'any';
  runner: Runner;
}

async function ensureBenchModel(pkg: BenchPackage): Promise<string> {
  const built = path.join(MODELS, `bench-${pkg.layout}-int4`);
  if (!(await pathExists(path.join(built, 'manifest.json')))) {
    console.error(`building the bench model (${pkg.layout}, int4) into ${path.relative(ROOT, built)} ...`);
    await buildModelPackage({ outDir: built, layout: pkg.layout, precision: 'int4', shape: presetShape('bench'), seed: 7, name: `bench-${pkg.layout}`, version: '1' });
  }
  if (!pkg.optimized) return built;
  const optimized = `${built}-opt`;
  if (!(await pathExists(path.join(optimized, 'manifest.json')))) {
    console.error(`aigw models optimize ${path.basename(built)} -> ${path.basename(optimized)} ...`);
    await optimizeModelPackage(built, optimized, { accuracyLevel: 4, version: '1-opt' });
  }
  return optimized;
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}

/** 128 prompt tokens of ordinary text, the same ids for every runner. */
async function promptIds(modelDir: string): Promise<number[]> {
  const tokenizer = await loadTokenizer(modelDir);
  const text = 'The city library opens at nine in the morning and closes at six in the evening. ';
  const ids: number[] = [];
  while (ids.length < PROMPT_TOKENS) ids.push(...tokenizer.encode(text));
  return ids.slice(0, PROMPT_TOKENS);
}

function table(rows: Row[], modelBytes: Record<string, number>): string {
  const find = (layout: string, mode: string, runner: Runner) =>
    rows.find((r) => r.layout === layout && r.runner === runner && (r.mode === mode || r.mode === 'any'));
  const lines = [
    '| package | mode | runner | TTFT ms | decode tok/s | ms/token | peak RSS MB | aigw vs transformers.js (decode) | vs floor (ms/token) |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const row of rows) {
    const peer = row.mode === 'any' ? undefined : find(row.layout, row.mode, 'transformers.js');
    const floor = find(row.layout, row.mode, 'floor');
    const speedUp = row.runner === 'aigw' && peer ? `${(row.decodeTokensPerSecond / peer.decodeTokensPerSecond).toFixed(2)}x` : '';
    const vsFloor = row.runner !== 'floor' && floor ? `${(row.msPerToken / floor.msPerToken).toFixed(3)}x` : '';
    lines.push(
      `| ${row.layout} | ${row.mode} | ${row.runner} | ${row.ttftMs.toFixed(1)} | ${row.decodeTokensPerSecond.toFixed(1)} | ` +
        `${row.msPerToken.toFixed(2)} | ${row.peakRssMb.toFixed(0)} | ${speedUp} | ${vsFloor} |`,
    );
  }
  const sizes = Object.entries(modelBytes).map(([label, bytes]) => `${label} ${(bytes / 2 ** 20).toFixed(0)} MB`);
  lines.push('', `Model files (int4): ${sizes.join(', ')}. ${PROMPT_TOKENS} prompt tokens, ${NEW_TOKENS} new tokens, ${THREADS} intra-op threads, median of ${REPEATS} runs after a warm-up in each of ${PROCESSES} processes per case, averaged.`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const paired: { layout: string; mode: Mode; aigwMsPerToken: number; floorMsPerToken: number }[] = [];
  const modelBytes: Record<string, number> = {};
  for (const pkg of PACKAGES) {
    const { label, layout } = pkg;
    const modelDir = await ensureBenchModel(pkg);
    modelBytes[label] = await folderBytes(modelDir);
    const ids = await promptIds(modelDir);
    const cases: { runner: Runner; mode: Mode | 'any' }[] = [
      { runner: 'floor', mode: 'any' },
      { runner: 'aigw', mode: 'greedy' },
      { runner: 'aigw', mode: 'sampling' },
    ];
    // transformers.js runs Optimum exports only; it has no GroupQueryAttention shared-buffer path.
    if (layout === 'optimum') cases.push({ runner: 'transformers.js', mode: 'greedy' }, { runner: 'transformers.js', mode: 'sampling' });
    const results = new Map<string, CaseResult[]>();
    for (let round = 0; round < PROCESSES; round++) {
      for (const { runner, mode } of cases) {
        console.error(`${label} ${mode} ${runner} (process ${round + 1} of ${PROCESSES}) ...`);
        const result = await runCase({
          runner,
          mode: mode === 'any' ? 'greedy' : mode,
          layout,
          modelDir,
          promptIds: ids,
          newTokens: NEW_TOKENS,
          threads: THREADS,
          repeats: REPEATS,
        });
        const key = `${runner}/${mode}`;
        results.set(key, [...(results.get(key) ?? []), result]);
      }
    }
    for (const mode of ['greedy', 'sampling'] as const) {
      console.error(`${label} ${mode}: aigw and the floor alternating in one process ...`);
      const pair = await runCase({ runner: 'aigw', mode, layout, modelDir, promptIds: ids, newTokens: NEW_TOKENS, threads: THREADS, repeats: 7, paired: true });
      paired.push({ layout: label, mode, ...pair });
    }
    for (const { runner, mode } of cases) {
      const runs = results.get(`${runner}/${mode}`)!;
      const mean = (pick: (r: CaseResult) => number) => runs.reduce((sum, r) => sum + pick(r), 0) / runs.length;
      const msPerToken = mean((r) => r.msPerToken);
      rows.push({
        layout: label,
        mode,
        runner,
        ttftMs: mean((r) => r.ttftMs),
        msPerToken,
        decodeTokensPerSecond: 1000 / msPerToken,
        peakRssMb: Math.max(...runs.map((r) => r.peakRssMb)),
      });
    }
  }
  const pairedTable = [
    '| package | mode | floor ms/token | aigw ms/token | aigw vs floor |',
    '|---|---|---:|---:|---:|',
    ...paired.map((p) => `| ${p.layout} | ${p.mode} | ${p.floorMsPerToken.toFixed(2)} | ${p.aigwMsPerToken.toFixed(2)} | ${(p.aigwMsPerToken / p.floorMsPerToken).toFixed(3)}x |`),
    '',
    'Same process, floor and aigw alternating, median of 7 runs each: the per-token cost of the engine over bare decoder steps.',
  ].join('\n');
  const markdown = `${table(rows, modelBytes)}\n\n${pairedTable}`;
  await mkdir(path.join(ROOT, 'bench', 'results'), { recursive: true });
  await writeFile(
    path.join(ROOT, 'bench', 'results', 'engine.json'),
    `${JSON.stringify({ date: new Date().toISOString(), machine: machineInfo(), promptTokens: PROMPT_TOKENS, newTokens: NEW_TOKENS, threads: THREADS, modelBytes, rows, paired }, null, 2)}\n`,
  );
  console.log(markdown);
}

/** The qwen0.5b section (bench/engine-optimized.ts): published-style q4 vs optimized ONNX, with the bandwidth floor. */
async function qwenMain(): Promise<void> {
  const { rows, paired, bandwidth, markdown } = await runOptimizedSection({
    modelsDir: MODELS,
    promptIds,
    promptTokens: PROMPT_TOKENS,
    newTokens: NEW_TOKENS,
    threads: THREADS,
    repeats: Number(argument('--repeats') ?? 3),
  });
  await mkdir(path.join(ROOT, 'bench', 'results'), { recursive: true });
  await writeFile(
    path.join(ROOT, 'bench', 'results', 'engine-qwen0.5b.json'),
    `${JSON.stringify({ date: new Date().toISOString(), machine: machineInfo(), promptTokens: PROMPT_TOKENS, newTokens: NEW_TOKENS, threads: THREADS, bandwidthBytesPerSecond: bandwidth, rows, paired }, null, 2)}\n`,
  );
  console.log(markdown);
}

/** The GGUF section (bench/gguf-peer.ts): llama.cpp and aigw on the same weights as GGUF Q4_0. */
async function ggufMain(): Promise<void> {
  const settings = { promptTokens: PROMPT_TOKENS, newTokens: NEW_TOKENS, threads: THREADS, repeats: REPEATS };
  const result = await ggufPeerRows(settings);
  await mkdir(path.join(ROOT, 'bench', 'results'), { recursive: true });
  await writeFile(path.join(ROOT, 'bench', 'results', 'engine-gguf.json'), `${JSON.stringify({ date: new Date().toISOString(), machine: machineInfo(), ...settings, ...result }, null, 2)}\n`);
  console.log(ggufPeerTable(result, settings));
}

function argument(name: string): string | undefined {
  return process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined;
}

// `npm run bench:engine -- --only bench|qwen0.5b|gguf` runs one section; all by default.
// `--repeats N` sets the qwen0.5b section's runs per case.
const only = argument('--only');
if (only === undefined || only === 'bench') await main();
if (only === undefined || only === 'qwen0.5b') await qwenMain();
if (only === undefined || only === 'gguf') await ggufMain();
