// The GGUF part of the engine benchmark: the bench preset's weights written as GGUF Q4_0 (the
// builder's GGUF writer), decoded by llama.cpp (node-llama-cpp, CPU) and by aigw on the package
// `aigw models import` makes of the same file (Q4_0 repacked bit for bit into MatMulNBits).
// Run by bench/engine.ts (`npm run bench:engine -- --only gguf` for this section alone).
import { execFile } from 'node:child_process';
import { mkdir, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { importGgufFile } from '../src/models/gguf-import.js';
import { loadTokenizer } from '../src/engine/tokenizer.js';
import { byteLevelVocab } from '../tools/model-builder/gguf-vocab.js';
import { writeGgufModel } from '../tools/model-builder/gguf-writer.js';
import { presetShape } from '../tools/model-builder/presets.js';
import type { BenchCase, CaseResult, Mode } from './engine-worker.js';
import type { LlamaCppCase } from './llama-cpp-worker.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const MODELS = path.join(ROOT, 'bench', 'models');

export interface GgufPeerSettings {
  promptTokens: number;
  newTokens: number;
  threads: number;
  repeats: number;
}

export interface GgufPeerRow extends CaseResult {
  runner: 'llama.cpp' | 'aigw (imported GGUF)';
  mode: Mode;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** The bench weights as GGUF Q4_0 and the package imported from it, built once under bench/models. */
async function ensureGgufModels(): Promise<{ gguf: string; imported: string }> {
  const gguf = path.join(MODELS, 'bench-q4_0.gguf');
  const imported = path.join(MODELS, 'bench-gguf-q4_0-imported');
  const shape = presetShape('bench');
  if (!(await exists(gguf))) {
    console.error(`writing the bench weights as GGUF Q4_0 into ${path.relative(ROOT, gguf)} ...`);
    await mkdir(MODELS, { recursive: true });
    const partial = `${gguf}.partial`;
    await writeGgufModel({ file: partial, shape, seed: 7, architecture: 'llama', fileType: 'Q4_0', vocab: await byteLevelVocab(shape.vocabSize, 'llama-bpe'), name: 'bench' });
    await rename(partial, gguf);
  }
  if (!(await exists(path.join(imported, 'manifest.json')))) {
    console.error(`importing it into ${path.relative(ROOT, imported)} ...`);
    await importGgufFile(gguf, { outDir: imported, name: 'bench-gguf' });
  }
  return { gguf, imported };
}

async function runWorker(worker: string, spec: unknown): Promise<CaseResult> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', worker), JSON.stringify(spec)], {
    cwd: ROOT,
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as CaseResult;
}

export async function ggufPeerRows(settings: GgufPeerSettings): Promise<GgufPeerRow[]> {
  const { gguf, imported } = await ensureGgufModels();
  const tokenizer = await loadTokenizer(imported);
  const ids: number[] = [];
  while (ids.length < settings.promptTokens) ids.push(...tokenizer.encode('The city library opens at nine in the morning and closes at six in the evening. '));
  const promptIds = ids.slice(0, settings.promptTokens);
  const rows: GgufPeerRow[] = [];
  for (const mode of ['greedy', 'sampling'] as const) {
    console.error(`GGUF Q4_0 ${mode}: llama.cpp ...`);
    const llamaCase: LlamaCppCase = { gguf, mode, promptIds, newTokens: settings.newTokens, threads: settings.threads, repeats: settings.repeats };
    rows.push({ runner: 'llama.cpp', mode, ...(await runWorker('llama-cpp-worker.ts', llamaCase)) });
    console.error(`GGUF Q4_0 ${mode}: aigw on the imported package ...`);
    const aigwCase: BenchCase = { runner: 'aigw', mode, layout: 'optimum', modelDir: imported, promptIds, newTokens: settings.newTokens, threads: settings.threads, repeats: settings.repeats };
    rows.push({ runner: 'aigw (imported GGUF)', mode, ...(await runWorker('engine-worker.ts', aigwCase)) });
  }
  return rows;
}

export function ggufPeerTable(rows: GgufPeerRow[], settings: GgufPeerSettings): string {
  const lines = [
    '| weights | mode | runner | TTFT ms | decode tok/s | ms/token | peak RSS MB | aigw vs llama.cpp (decode) | aigw vs llama.cpp (TTFT) |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const row of rows) {
    const peer = rows.find((r) => r.runner === 'llama.cpp' && r.mode === row.mode)!;
    const mine = row.runner !== 'llama.cpp';
    lines.push(
      `| GGUF Q4_0 | ${row.mode} | ${row.runner} | ${row.ttftMs.toFixed(1)} | ${row.decodeTokensPerSecond.toFixed(1)} | ${row.msPerToken.toFixed(2)} | ${row.peakRssMb.toFixed(0)} | ` +
        `${mine ? `${(row.decodeTokensPerSecond / peer.decodeTokensPerSecond).toFixed(2)}x` : ''} | ${mine ? `${(peer.ttftMs / row.ttftMs).toFixed(2)}x` : ''} |`,
    );
  }
  lines.push('', `Bench preset weights as GGUF Q4_0; ${settings.promptTokens} prompt tokens, ${settings.newTokens} new tokens, ${settings.threads} threads, median of ${settings.repeats} runs after a warm-up, one process per case. Sampling: temperature 0.7, top_p 0.9. TTFT ratio > 1 means aigw answers first.`);
  return lines.join('\n');
}
