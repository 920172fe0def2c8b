// Gateway benchmark (npm run bench:gateway): with autocannon against the local server and
// DynamoDB Local, (1) cache hits: latency and requests per second; (2) what admission (keys,
// rate limits, concurrency, budget reservation and settlement; the cache skipped) adds over the same
// gateway calling the engine directly, at concurrency 1, 16 and 64. Writes
// bench/results/gateway.json and prints a markdown table.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { startDynamoDbLocal } from '../src/store/index.js';
import { buildModelPackage, PackageExistsError } from '../tools/model-builder/index.js';
import { presetShape } from '../tools/model-builder/presets.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const MODEL_DIR = path.join(ROOT, 'bench', 'models', 'tiny-optimum-int4');
const DURATION_SECONDS = 10;
const WARMUP_SECONDS = 8;
const CONCURRENCY = [1, 16, 64];

interface Server {
  url: string;
  apiKey: string;
  process: ChildProcess;
}

async function startServer(mode: 'admission' | 'direct', env: NodeJS.ProcessEnv): Promise<Server> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'gateway-server.ts'), mode, MODEL_DIR], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  for await (const line of lines) {
    if (line.startsWith('{')) return { ...(JSON.parse(line) as { url: string; apiKey: string }), process: child };
  }
  throw new Error(`the ${mode} server exited before it was ready`);
}

interface Measurement {
  p50Ms: number;
  p99Ms: number;
  requestsPerSecond: number;
  requests: number;
  errors: number;
}

async function load(server: Server, connections: number, body: object, headers: Record<string, string> = {}, duration = DURATION_SECONDS): Promise<Measurement> {
  const result = await autocannon({
    url: `${server.url}/v1/chat/completions`,
    method: 'POST',
    connections,
    duration,
    headers: { 'content-type': 'application/json', ...(server.apiKey ? { authorization: `Bearer ${server.apiKey}` } : {}), ...headers },
    body: JSON.stringify(body),
  });
  return {
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    requestsPerSecond: result.requests.average,
    requests: result.requests.total,
    errors: result.non2xx + result.errors + result.timeouts,
  };
}

async function main(): Promise<void> {
  try {
    await buildModelPackage({ outDir: MODEL_DIR, layout: 'optimum', precision: 'int4', shape: presetShape('tiny'), seed: 42, name: 'aigw-tiny', version: '1' });
  } catch (error) {
    if (!(error instanceof PackageExistsError)) throw error;
  }
  const dynamo = await startDynamoDbLocal();
  const env = { AIGW_BENCH_DYNAMODB: dynamo.endpoint, AIGW_BENCH_KEY_ID: dynamo.credentials.accessKeyId, AIGW_BENCH_SECRET: dynamo.credentials.secretAccessKey };
  const admission = await startServer('admission', env);
  const direct = await startServer('direct', env);
  try {
    // One generated token per request keeps the engine's share small, so the gateway's own cost shows.
    const generation = { model: 'aigw-tiny', messages: [{ role: 'user', content: 'Hello there' }], max_tokens: 1, temperature: 0.7 };
    // Warm-up: DynamoDB Local's JVM and V8 both compile hot paths during the first seconds of load.
    console.error('warming up ...');
    await load(direct, 4, generation, {}, WARMUP_SECONDS);
    await load(admission, 4, generation, { 'x-aigw-skip-cache': 'true' }, WARMUP_SECONDS);
    const rows: { concurrency: number; direct: Measurement; admission: Measurement }[] = [];
    for (const connections of CONCURRENCY) {
      console.error(`concurrency ${connections}: direct, then with admission ...`);
      const directRun = await load(direct, connections, generation);
      const admissionRun = await load(admission, connections, generation, { 'x-aigw-skip-cache': 'true' });
      rows.push({ concurrency: connections, direct: directRun, admission: admissionRun });
    }
    const cached = { ...generation, temperature: 0, messages: [{ role: 'user', content: 'cache me' }] };
    await fetch(`${admission.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${admission.apiKey}` },
      body: JSON.stringify(cached),
    });
    console.error('cache hits ...');
    const hits = { 1: await load(admission, 1, cached), 16: await load(admission, 16, cached) };

    await mkdir(path.join(ROOT, 'bench', 'results'), { recursive: true });
    await writeFile(
      path.join(ROOT, 'bench', 'results', 'gateway.json'),
      `${JSON.stringify({ date: new Date().toISOString(), durationSeconds: DURATION_SECONDS, admission: rows, cacheHits: hits }, null, 2)}\n`,
    );
    const f = (n: number) => n.toFixed(1);
    const lines = [
      '| concurrency | direct p50 ms | direct p99 ms | with admission p50 ms | with admission p99 ms | added p50 ms | added p99 ms | direct req/s | with admission req/s | errors |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...rows.map(
        (r) =>
          `| ${r.concurrency} | ${f(r.direct.p50Ms)} | ${f(r.direct.p99Ms)} | ${f(r.admission.p50Ms)} | ${f(r.admission.p99Ms)} | ` +
          `${f(r.admission.p50Ms - r.direct.p50Ms)} | ${f(r.admission.p99Ms - r.direct.p99Ms)} | ${f(r.direct.requestsPerSecond)} | ` +
          `${f(r.admission.requestsPerSecond)} | ${r.direct.errors + r.admission.errors} |`,
      ),
      '',
      '| cache hits | p50 ms | p99 ms | req/s | errors |',
      '|---|---:|---:|---:|---:|',
      ...([1, 16] as const).map((c) => `| concurrency ${c} | ${f(hits[c].p50Ms)} | ${f(hits[c].p99Ms)} | ${f(hits[c].requestsPerSecond)} | ${hits[c].errors} |`),
      '',
      `${DURATION_SECONDS} s per run with autocannon after an ${WARMUP_SECONDS} s warm-up of each server; the tiny demo model, 1 generated token per request; DynamoDB Local (Java) on the same 2-core machine.`,
    ];
    console.log(lines.join('\n'));
  } finally {
    admission.process.kill('SIGTERM');
    direct.process.kill('SIGTERM');
    await dynamo.stop();
  }
}

await main();
