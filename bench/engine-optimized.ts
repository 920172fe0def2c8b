// The engine benchmark's qwen0.5b section (run by bench/engine.ts): Qwen2.5-0.5B's exact shapes as a
// published int4 export has them (fp32 tied lm_head), the same package after `aigw models optimize`,
// transformers.js on the original and on the optimized files, and each row's fraction of the
// memory-bandwidth floor.
import path from 'node:path';
import { optimizeModelPackage } from '../src/models/index.js';
import { buildModelPackage } from '../tools/model-builder/index.js';
import { presetShape } from '../tools/model-builder/presets.js';
import { runCase } from './engine-run-case.js';
import type { BenchCase, CaseResult, Mode, ModesResult, Runner } from './engine-worker.js';
import { bytesPerToken, measureBandwidth } from './memory-floor.js';
import { pathExists } from '../src/models/package-files.js';

export interface OptimizedSectionOptions {
  modelsDir: string;
  promptIds(modelDir: string): Promise<number[]>;
  promptTokens: number;
  newTokens: number;
  threads: number;
  repeats: number;
}

export interface FloorRow extends CaseResult {
  model: string;
  mode: Mode | 'any';
  runner: Runner;
  bytesPerToken: number;
  floorMsPerToken: number;
}

// `peer`: transformers.js runs these files too, so aigw's rows compare with it on the same files.
const VARIANTS = [
  { model: 'q4 (fp32 tied lm_head, as published)', suffix: '', optimize: undefined, peer: true },
  { model: 'optimized: accuracy_level 4, lm_head int8', suffix: '-opt-int8', optimize: { lmHeadBits: 8 as const }, peer: false },
  { model: 'optimized: accuracy_level 4, lm_head int4', suffix: '-opt-int4', optimize: { lmHeadBits: 4 as const }, peer: true },
];

async function ensureModels(modelsDir: string): Promise<string[]> {
  const base = path.join(modelsDir, 'qwen0.5b-optimum-int4');
  if (!(await pathExists(path.join(base, 'manifest.json')))) {
    console.error(`building the qwen0.5b model (optimum, int4 layers, fp32 tied lm_head) into ${base} ...`);
    await buildModelPackage({
      outDir: base,
      layout: 'optimum',
      precision: 'int4',
      quantizeLmHead: false,
      shape: presetShape('qwen0.5b'),
      seed: 7,
      name: 'qwen0.5b',
      version: '1',
    });
  }
  const dirs: string[] = [];
  for (const variant of VARIANTS) {
    const dir = `${base}${variant.suffix}`;
    if (variant.optimize && !(await pathExists(path.join(dir, 'manifest.json')))) {
      console.error(`aigw models optimize ${path.basename(base)} -> ${path.basename(dir)} ...`);
      await optimizeModelPackage(base, dir, { accuracyLevel: 4, ...variant.optimize, version: `1${variant.suffix}` });
    }
    dirs.push(dir);
  }
  return dirs;
}

/** aigw greedy and sampling alternating in one process, on one package: sampling's cost without process noise. */
export interface PairedRow extends ModesResult {
  model: string;
}

export async function runOptimizedSection(options: OptimizedSectionOptions): Promise<{ rows: FloorRow[]; paired: PairedRow[]; bandwidth: number; markdown: string }> {
  const dirs = await ensureModels(options.modelsDir);
  console.error('measuring memory bandwidth ...');
  const bandwidth = await measureBandwidth(options.threads);
  const ids = await options.promptIds(dirs[0]!);
  const rows: FloorRow[] = [];
  const paired: PairedRow[] = [];
  for (const [index, variant] of VARIANTS.entries()) {
    const modelDir = dirs[index]!;
    // KV cache read at the decode's mean context length.
    const bytes = await bytesPerToken(modelDir, options.promptTokens + options.newTokens / 2);
    const cases: { runner: Runner; mode: Mode | 'any' }[] = [
      { runner: 'floor', mode: 'any' },
      { runner: 'aigw', mode: 'greedy' },
      { runner: 'aigw', mode: 'sampling' },
    ];
    if (variant.peer) cases.push({ runner: 'transformers.js', mode: 'greedy' }, { runner: 'transformers.js', mode: 'sampling' });
    // The int8 lm_head variant sits between the two others; its greedy row is enough to place it.
    if (variant.suffix === '-opt-int8') cases.splice(0, cases.length, { runner: 'aigw', mode: 'greedy' });
    for (const { runner, mode } of cases) {
      console.error(`qwen0.5b ${variant.model}: ${mode} ${runner} ...`);
      const spec: BenchCase = {
        runner,
        mode: mode === 'any' ? 'greedy' : mode,
        layout: 'optimum',
        modelDir,
        promptIds: ids,
        newTokens: options.newTokens,
        threads: options.threads,
        repeats: options.repeats,
      };
      const result = await runCase(spec);
      const row: FloorRow = { ...result, model: variant.model, mode, runner, bytesPerToken: bytes, floorMsPerToken: (bytes / bandwidth) * 1000 };
      // Each row as it lands, so a long run that is cut short still leaves its numbers.
      console.error(JSON.stringify(row));
      rows.push(row);
    }
    // Runs of one case in separate processes vary by 10 % and more here, more than sampling
    // costs over greedy; greedy and sampling taking turns token by token in one process measure it.
    if (variant.suffix === '-opt-int4') {
      console.error(`qwen0.5b ${variant.model}: aigw greedy and sampling taking turns token by token in one process ...`);
      const spec = { runner: 'aigw' as const, mode: 'greedy' as const, layout: 'optimum' as const, modelDir, promptIds: ids, newTokens: options.newTokens, threads: options.threads, repeats: 9, paired: 'modes' as const };
      paired.push({ model: variant.model, ...(await runCase(spec)) });
    }
  }
  return { rows, paired, bandwidth, markdown: `${floorTable(rows, bandwidth, options)}\n\n${pairedTable(paired)}` };
}

function pairedTable(paired: PairedRow[]): string {
  return [
    '| qwen0.5b model | aigw greedy ms/token | aigw sampling ms/token | sampling / greedy |',
    '|---|---:|---:|---:|',
    ...paired.map((p) => `| ${p.model} | ${p.greedyMsPerToken.toFixed(2)} | ${p.samplingMsPerToken.toFixed(2)} | ${(p.samplingMsPerToken / p.greedyMsPerToken).toFixed(3)}x |`),
    '',
    'Same process, aigw greedy and sampling taking turns token by token (each token after the first, its decoder step and its draw), median of 9 runs of 128 tokens each.',
  ].join('\n');
}

function floorTable(rows: FloorRow[], bandwidth: number, options: OptimizedSectionOptions): string {
  const peer = (model: string, mode: Mode | 'any') => rows.find((r) => r.runner === 'transformers.js' && r.model === model && r.mode === mode);
  const published = (mode: Mode | 'any') => rows.find((r) => r.runner === 'aigw' && r.mode === mode);
  const lines = [
    '| qwen0.5b model | mode | runner | TTFT ms | decode tok/s | ms/token | MB read/token | floor ms/token | fraction of floor | vs transformers.js (same files) | vs published q4 (aigw) |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const row of rows) {
    const tjs = row.runner === 'aigw' ? peer(row.model, row.mode) : undefined;
    const base = row.runner === 'aigw' ? published(row.mode) : undefined;
    lines.push(
      `| ${row.model} | ${row.mode} | ${row.runner} | ${row.ttftMs.toFixed(0)} | ${row.decodeTokensPerSecond.toFixed(1)} | ${row.msPerToken.toFixed(2)} | ` +
        `${(row.bytesPerToken / 1e6).toFixed(0)} | ${row.floorMsPerToken.toFixed(2)} | ${(row.floorMsPerToken / row.msPerToken).toFixed(2)} | ` +
        `${tjs ? `${(tjs.msPerToken / row.msPerToken).toFixed(2)}x` : ''} | ${base && base !== row ? `${(base.msPerToken / row.msPerToken).toFixed(2)}x` : ''} |`,
    );
  }
  lines.push(
    '',
    `Memory bandwidth measured in this run (onnxruntime fp32 GEMV over 256 MB, ${options.threads} threads): ${(bandwidth / 1e9).toFixed(1)} GB/s. ` +
      `Floor = bytes read per decoded token / that bandwidth; fraction of floor = floor / measured ms per token (1.0 would be memory-bound perfection). ` +
      `${options.promptTokens} prompt tokens, ${options.newTokens} new tokens, median of ${options.repeats} runs after a warm-up, one process per case.`,
  );
  return lines.join('\n');
}
