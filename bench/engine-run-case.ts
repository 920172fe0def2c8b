// Runs one engine benchmark case in a fresh process (bench/engine-worker.ts) and parses its JSON line.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { BenchCase, CaseResult, ModesResult, PairedResult } from './engine-worker.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

export async function runCase(spec: BenchCase & { paired: true }): Promise<PairedResult>;
export async function runCase(spec: BenchCase & { paired: 'modes' }): Promise<ModesResult>;
export async function runCase(spec: BenchCase): Promise<CaseResult>;
export async function runCase(spec: BenchCase & { paired?: true | 'modes' }): Promise<CaseResult | PairedResult | ModesResult> {
  const worker = path.join(ROOT, 'bench', 'engine-worker.ts');
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', worker, JSON.stringify(spec)], {
    cwd: ROOT,
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as CaseResult | PairedResult | ModesResult;
}
