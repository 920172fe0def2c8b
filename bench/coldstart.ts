// Cold-start benchmark (npm run bench:coldstart): from an empty model cache to the first token
// for the `bench` preset (int4, Optimum layout) served by a local s3rver. Each run is a fresh
// process (as a new Lambda environment is): fetch the package (parallel ranged GETs or one
// stream per file), create the onnxruntime session, generate one token. Results go to
// bench/results/coldstart.json and a markdown table.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { S3Client } from '@aws-sdk/client-s3';
import { generate, loadModel } from '../src/engine/index.js';
import {
  DOWNLOAD_CONCURRENCY,
  DOWNLOAD_PART_SIZE,
  fetchModelPackage,
  pushModelPackage,
  readManifest,
  verifyModelFolder,
} from '../src/models/index.js';
import { S3RVER_CREDENTIALS, startS3rver } from '../test/setup/s3rver.js';
import { buildModelPackage } from '../tools/model-builder/index.js';
import { presetShape } from '../tools/model-builder/presets.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const MODEL_DIR = path.join(ROOT, 'bench', 'models', 'bench-optimum-int4');
const RESULTS = path.join(ROOT, 'bench', 'results', 'coldstart.json');
const THREADS = 2;
const REPEATS = 3;
const PROMPT = 'Write one sentence about the sea.';

type Mode = 'ranged' | 'single';

interface WorkerSpec {
  mode: Mode;
  endpoint: string;
  bucket: string;
  name: string;
  version: string;
  cacheDir: string;
}

interface ColdStart {
  /** Download of every file plus the SHA-256 check, to a verified folder in place. */
  fetchMs: number;
  /** onnxruntime session, tokenizer and decoder IO (loadModel), on the verified folder. */
  sessionMs: number;
  /** Prompt encoding, prefill and the first sampled token. */
  firstTokenMs: number;
  /** fetch + session + first token. */
  totalMs: number;
  /** Hashing the package again after the run: the share of fetchMs spent verifying. */
  verifyMs: number;
  promptTokens: number;
}

/** One cold start in this process; prints its timings as one JSON line. */
async function worker(spec: WorkerSpec): Promise<void> {
  const s3 = new S3Client({
    endpoint: spec.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const start = performance.now();
  const dir = await fetchModelPackage({ s3, ...spec, singleStream: spec.mode === 'single' });
  const fetched = performance.now();
  const model = await loadModel(dir, { threads: THREADS });
  const loaded = performance.now();
  const promptIds = model.encodeChat([{ role: 'user', content: PROMPT }]);
  for await (const event of generate(model, promptIds, { maxTokens: 1, temperature: 0 })) {
    if (event.type === 'token' || event.type === 'finish') break;
  }
  const firstToken = performance.now();
  const verifyStart = performance.now();
  await verifyModelFolder(dir, model.manifest, { force: true });
  const verifyMs = performance.now() - verifyStart;
  const result: ColdStart = {
    fetchMs: fetched - start,
    sessionMs: loaded - fetched,
    firstTokenMs: firstToken - loaded,
    totalMs: firstToken - start,
    verifyMs,
    promptTokens: promptIds.length,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  await model.session.release();
  s3.destroy();
}

async function ensureBenchModel(): Promise<void> {
  try {
    await stat(path.join(MODEL_DIR, 'manifest.json'));
  } catch {
    console.error(`building the bench model (optimum, int4) into ${path.relative(ROOT, MODEL_DIR)} ...`);
    await buildModelPackage({
      outDir: MODEL_DIR,
      layout: 'optimum',
      precision: 'int4',
      shape: presetShape('bench'),
      seed: 7,
      name: 'bench-optimum',
      version: '1',
    });
  }
}

async function runWorker(spec: WorkerSpec): Promise<ColdStart> {
  const script = fileURLToPath(import.meta.url);
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script, '--worker', JSON.stringify(spec)], {
    cwd: ROOT,
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as ColdStart;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function summarize(runs: ColdStart[]): ColdStart {
  const pick = (key: keyof ColdStart) => median(runs.map((run) => run[key]));
  return {
    fetchMs: pick('fetchMs'),
    sessionMs: pick('sessionMs'),
    firstTokenMs: pick('firstTokenMs'),
    totalMs: pick('totalMs'),
    verifyMs: pick('verifyMs'),
    promptTokens: runs[0].promptTokens,
  };
}

function table(summary: Record<Mode, ColdStart>, packageBytes: number, pushMs: number): string {
  const mib = packageBytes / 2 ** 20;
  const labels: Record<Mode, string> = {
    ranged: `parallel ranged GETs (${DOWNLOAD_PART_SIZE / 2 ** 20} MiB parts, ${DOWNLOAD_CONCURRENCY} in flight)`,
    single: 'single stream (one GET per file)',
  };
  const lines = [
    '| download | fetch ms (download + verify) | verify alone ms | MiB/s (fetch) | session ms | first token ms | empty cache → first token ms |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const mode of ['ranged', 'single'] as const) {
    const row = summary[mode];
    lines.push(
      `| ${labels[mode]} | ${row.fetchMs.toFixed(0)} | ${row.verifyMs.toFixed(0)} | ${(mib / (row.fetchMs / 1000)).toFixed(0)} | ` +
        `${row.sessionMs.toFixed(0)} | ${row.firstTokenMs.toFixed(0)} | ${row.totalMs.toFixed(0)} |`,
    );
  }
  lines.push(
    '',
    `Package bench-optimum@1 (int4, Optimum layout): ${mib.toFixed(0)} MiB; push took ${(pushMs / 1000).toFixed(1)} s. ` +
      `Each row is the median of ${REPEATS} cold starts, each a fresh process with an empty cache; ${THREADS} intra-op threads, ` +
      `a ${summary.ranged.promptTokens}-token chat prompt, one generated token. "verify alone" hashes the fetched package once more ` +
      'after the run, to show how much of the fetch is the SHA-256 check.',
    '',
    'Note: the store here is s3rver on loopback, not S3. It serves files from the local disk through one Node process ' +
      'that shares the CPU with the client, so these download times measure this machine, not Lambda. Against S3 a single ' +
      'connection is throughput-bound and parallel ranged GETs add connections; measure in AWS for real download numbers.',
  );
  return lines.join('\n');
}

async function main(): Promise<void> {
  await ensureBenchModel();
  const manifest = await readManifest(MODEL_DIR);
  const packageBytes = manifest.files.reduce((sum, file) => sum + file.size, 0);
  const server = await startS3rver();
  const scratch = await mkdtemp(path.join(tmpdir(), 'aigw-coldstart-'));
  try {
    const pushStart = performance.now();
    await pushModelPackage({ s3: server.client(), bucket: server.bucket, folder: MODEL_DIR, name: manifest.name, version: manifest.version });
    const pushMs = performance.now() - pushStart;

    const runs: Record<Mode, ColdStart[]> = { ranged: [], single: [] };
    for (let repeat = 0; repeat < REPEATS; repeat++) {
      // Alternate the order so neither mode always runs on a warmer page cache.
      const order: Mode[] = repeat % 2 === 0 ? ['ranged', 'single'] : ['single', 'ranged'];
      for (const mode of order) {
        const cacheDir = path.join(scratch, `${mode}-${repeat}`);
        console.error(`cold start ${repeat + 1}/${REPEATS}: ${mode} ...`);
        runs[mode].push(
          await runWorker({ mode, endpoint: server.endpoint, bucket: server.bucket, name: manifest.name, version: manifest.version, cacheDir }),
        );
        await rm(cacheDir, { recursive: true, force: true });
      }
    }
    const summary = { ranged: summarize(runs.ranged), single: summarize(runs.single) };
    await mkdir(path.dirname(RESULTS), { recursive: true });
    await writeFile(
      RESULTS,
      `${JSON.stringify(
        {
          date: new Date().toISOString(),
          store: 's3rver on 127.0.0.1 (not S3)',
          model: { name: manifest.name, version: manifest.version, bytes: packageBytes, files: manifest.files.length },
          partSize: DOWNLOAD_PART_SIZE,
          concurrency: DOWNLOAD_CONCURRENCY,
          threads: THREADS,
          repeats: REPEATS,
          pushMs,
          summary,
          runs,
        },
        null,
        2,
      )}\n`,
    );
    console.log(table(summary, packageBytes, pushMs));
  } finally {
    await server.stop();
    await rm(scratch, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--worker') {
  await worker(JSON.parse(process.argv[3]!) as WorkerSpec);
} else {
  await main();
}
