// The GGUF part of the engine benchmark: the bench preset's weights written as GGUF Q4_0 (the
// builder's GGUF writer), decoded by llama.cpp (node-llama-cpp, CPU) and by aigw on the package
// `aigw models import` makes of the same file (Q4_0 repacked bit for bit into MatMulNBits): as
// imported by default (genai layout, accuracy_level 4: int8 activations, as llama.cpp's Q4_0
// kernels compute) and with `--layout optimum --accuracy-level 0` (fp32 compute) beside it.
// Run by bench/engine.ts (`npm run bench:engine -- --only gguf` for this section alone).
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { mkdir, rename } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { importGgufFile } from '../src/models/gguf-import.js';
import { loadTokenizer } from '../src/engine/tokenizer.js';
import { byteLevelVocab } from '../tools/model-builder/gguf-vocab.js';
import { writeGgufModel } from '../tools/model-builder/gguf-writer.js';
import { presetShape } from '../tools/model-builder/presets.js';
import { alternate, type RunTiming } from './alternate.js';
import type { BenchCase, CaseResult, Mode } from './engine-worker.js';
import type { LlamaCppCase } from './llama-cpp-worker.js';
import { TURN_PREFIX, type TurnSpec } from './turn-worker.js';
import { pathExists } from '../src/models/package-files.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const MODELS = path.join(ROOT, 'bench', 'models');

export interface GgufPeerSettings {
  promptTokens: number;
  newTokens: number;
  threads: number;
  repeats: number;
}

export interface GgufPeerRow extends CaseResult {
  runner: 'llama.cpp' | 'aigw (imported GGUF)' | 'aigw (imported, fp32 compute)';
  mode: Mode;
}

/** The bench weights as GGUF Q4_0 and the packages imported from it, built once under bench/models. */
async function ensureGgufModels(): Promise<{ gguf: string; imported: string; fp32: string }> {
  const gguf = path.join(MODELS, 'bench-q4_0.gguf');
  const shape = presetShape('bench');
  if (!(await pathExists(gguf))) {
    console.error(`writing the bench weights as GGUF Q4_0 into ${path.relative(ROOT, gguf)} ...`);
    await mkdir(MODELS, { recursive: true });
    const partial = `${gguf}.partial`;
    await writeGgufModel({ file: partial, shape, seed: 7, architecture: 'llama', fileType: 'Q4_0', vocab: await byteLevelVocab(shape.vocabSize, 'llama-bpe'), name: 'bench' });
    await rename(partial, gguf);
  }
  const imported = path.join(MODELS, 'bench-gguf-q4_0-import-default');
  const fp32 = path.join(MODELS, 'bench-gguf-q4_0-import-fp32');
  for (const [dir, options] of [[imported, {}], [fp32, { layout: 'optimum', accuracyLevel: 0 }]] as const) {
    if (await pathExists(path.join(dir, 'manifest.json'))) continue;
    console.error(`importing it into ${path.relative(ROOT, dir)} ...`);
    await importGgufFile(gguf, { outDir: dir, name: 'bench-gguf', ...options });
  }
  return { gguf, imported, fp32 };
}

async function runWorker(worker: string, spec: unknown): Promise<CaseResult> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', worker), JSON.stringify(spec)], {
    cwd: ROOT,
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as CaseResult;
}

const PROCESSES = 2;

/** An engine loaded in a process of its own (bench/turn-worker.ts) that decodes once per run() call. */
class TurnWorker {
  private readonly answers: ((line: string) => void)[] = [];

  private constructor(private readonly child: ReturnType<typeof spawn>) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith(TURN_PREFIX)) this.answers.shift()?.(line.slice(TURN_PREFIX.length));
    });
  }

  static async start(spec: TurnSpec): Promise<TurnWorker> {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'turn-worker.ts'), JSON.stringify(spec)], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const worker = new TurnWorker(child);
    await worker.answer();
    return worker;
  }

  async run(newTokens: number): Promise<RunTiming> {
    const answer = this.answer();
    this.child.stdin!.write(`${newTokens}\n`);
    return JSON.parse(await answer) as RunTiming;
  }

  async close(): Promise<void> {
    this.child.stdin!.end();
    await once(this.child, 'exit');
  }

  private answer(): Promise<string> {
    return new Promise((resolve, reject) => {
      const exited = (code: number | null) => reject(new Error(`bench/turn-worker.ts exited with ${code} before answering`));
      this.child.once('exit', exited);
      this.answers.push((line) => {
        this.child.off('exit', exited);
        resolve(line);
      });
    });
  }
}

/** llama.cpp and aigw taking turns run by run, each in its own process, both loaded throughout. */
async function alternateInTurns(llamaCase: LlamaCppCase, aigwCase: BenchCase): Promise<GgufPairedResult> {
  const llama = await TurnWorker.start({ engine: 'llama.cpp', spec: llamaCase });
  const aigw = await TurnWorker.start({ engine: 'aigw', spec: aigwCase });
  try {
    const [l, a] = await alternate((n) => llama.run(n), (n) => aigw.run(n), PAIRED_REPEATS, aigwCase.newTokens);
    return { llamaMsPerToken: l.msPerToken, aigwMsPerToken: a.msPerToken, llamaTtftMs: l.ttftMs, aigwTtftMs: a.ttftMs };
  } finally {
    await Promise.all([llama.close(), aigw.close()]);
  }
}

export interface GgufPairedResult {
  llamaMsPerToken: number;
  aigwMsPerToken: number;
  llamaTtftMs: number;
  aigwTtftMs: number;
}

function averaged(results: CaseResult[]): CaseResult {
  const mean = (pick: (r: CaseResult) => number) => results.reduce((sum, r) => sum + pick(r), 0) / results.length;
  const msPerToken = mean((r) => r.msPerToken);
  return { ttftMs: mean((r) => r.ttftMs), msPerToken, decodeTokensPerSecond: 1000 / msPerToken, peakRssMb: Math.max(...results.map((r) => r.peakRssMb)) };
}

export interface GgufPairedRow extends GgufPairedResult {
  mode: Mode;
}

export async function ggufPeerRows(settings: GgufPeerSettings): Promise<{ rows: GgufPeerRow[]; paired: GgufPairedRow[] }> {
  const { gguf, imported, fp32 } = await ensureGgufModels();
  const tokenizer = await loadTokenizer(imported);
  const ids: number[] = [];
  while (ids.length < settings.promptTokens) ids.push(...tokenizer.encode('The city library opens at nine in the morning and closes at six in the evening. '));
  const promptIds = ids.slice(0, settings.promptTokens);
  const rows: GgufPeerRow[] = [];
  const paired: GgufPairedRow[] = [];
  for (const mode of ['greedy', 'sampling'] as const) {
    const llamaCase: LlamaCppCase = { gguf, mode, promptIds, newTokens: settings.newTokens, threads: settings.threads, repeats: settings.repeats };
    const aigwCase: BenchCase = { runner: 'aigw', mode, layout: 'genai', modelDir: imported, promptIds, newTokens: settings.newTokens, threads: settings.threads, repeats: settings.repeats };
    const cases = [
      { runner: 'llama.cpp' as const, worker: 'llama-cpp-worker.ts', spec: llamaCase as unknown },
      { runner: 'aigw (imported GGUF)' as const, worker: 'engine-worker.ts', spec: aigwCase },
      { runner: 'aigw (imported, fp32 compute)' as const, worker: 'engine-worker.ts', spec: { ...aigwCase, layout: 'optimum', modelDir: fp32 } },
    ];
    // Each case in PROCESSES fresh processes, taken in turns, their medians averaged: one
    // process's number varies by up to 10 % on this machine, as much as the differences measured.
    const results = new Map<string, CaseResult[]>();
    for (let round = 1; round <= PROCESSES; round++) {
      for (const c of cases) {
        console.error(`GGUF Q4_0 ${mode}: ${c.runner} (process ${round} of ${PROCESSES}) ...`);
        results.set(c.runner, [...(results.get(c.runner) ?? []), await runWorker(c.worker, c.spec)]);
      }
    }
    for (const c of cases) rows.push({ runner: c.runner, mode, ...averaged(results.get(c.runner)!) });
    console.error(`GGUF Q4_0 ${mode}: llama.cpp and aigw (imported GGUF) taking turns, each in its own process ...`);
    paired.push({ mode, ...(await alternateInTurns(llamaCase, aigwCase)) });
  }
  return { rows, paired };
}

const PAIRED_REPEATS = 11;

export function ggufPeerTable({ rows, paired }: { rows: GgufPeerRow[]; paired: GgufPairedRow[] }, settings: GgufPeerSettings): string {
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
  lines.push('', `Bench preset weights as GGUF Q4_0; ${settings.promptTokens} prompt tokens, ${settings.newTokens} new tokens, ${settings.threads} threads, median of ${settings.repeats} runs after a warm-up in each of ${PROCESSES} processes per case, averaged. Sampling: temperature 0.7, top_p 0.9. TTFT ratio > 1 means aigw answers first. Imported GGUF: \`aigw models import\` as it comes (genai layout, MatMulNBits accuracy_level 4: int8 activations); fp32 compute: \`--layout optimum --accuracy-level 0\`.`);
  lines.push(
    '',
    '| weights | mode | llama.cpp ms/token | aigw (imported GGUF) ms/token | aigw vs llama.cpp (decode) | llama.cpp TTFT ms | aigw TTFT ms | aigw vs llama.cpp (TTFT) |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
    ...paired.map(
      (p) =>
        `| GGUF Q4_0 | ${p.mode} | ${p.llamaMsPerToken.toFixed(2)} | ${p.aigwMsPerToken.toFixed(2)} | ${(p.llamaMsPerToken / p.aigwMsPerToken).toFixed(2)}x | ` +
        `${p.llamaTtftMs.toFixed(1)} | ${p.aigwTtftMs.toFixed(1)} | ${(p.llamaTtftMs / p.aigwTtftMs).toFixed(2)}x |`,
    ),
    '',
    `llama.cpp and aigw taking turns run by run, each loaded in a process of its own throughout, median of ${PAIRED_REPEATS} runs each.`,
  );
  return lines.join('\n');
}
