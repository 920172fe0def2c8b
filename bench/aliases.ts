// Alias benchmark (npm run bench:aliases): what resolving a model name costs the gateway per
// request, side by side in one process: the plain map lookup every request did before aliases,
// an alias served from the gateway's cache (the case the < 1 ms p50 target is about), a canary
// alias with sticky assignment (one SHA-256), and a cache miss (one GetItem to DynamoDB Local).
// Writes bench/results/aliases.json and prints a markdown table.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ModelBackend } from '../src/backends/model-backend.js';
import { AliasStore, ModelRegistry, ModelResolver, createAlias, setAlias, startCanary, stickinessKey } from '../src/routing/index.js';
import { createDynamoDbClient, ensureTable, startDynamoDbLocal, tableSchema } from '../src/store/index.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const ITERATIONS = 20_000;
const MISS_ITERATIONS = 500;

const backend = (name: string, version: string) => ({ id: name, version: `${name}@${version}` }) as ModelBackend;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function timed(iterations: number, run: (i: number) => Promise<unknown> | unknown) {
  for (let i = 0; i < Math.min(1000, iterations); i++) await run(i);
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const start = process.hrtime.bigint();
    await run(i);
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  samples.sort((a, b) => a - b);
  return { p50Ms: percentile(samples, 50), p99Ms: percentile(samples, 99), iterations };
}

const local = await startDynamoDbLocal();
try {
  const client = createDynamoDbClient({ endpoint: local.endpoint, region: 'us-east-1', credentials: local.credentials, requestTimeoutMs: 5000 });
  const store = { client, tableName: 'aigw-bench-aliases' };
  await ensureTable(client, tableSchema(store.tableName));
  const registry = new ModelRegistry([backend('qwen', '3'), backend('qwen', '4')]).backends();
  const writer = new AliasStore(store, { cacheMs: 0 });
  await createAlias(store, setAlias(undefined, 'stable', 'qwen@3'));
  const canary = setAlias(undefined, 'canary', 'qwen@3');
  await createAlias(store, canary);
  await writer.write(startCanary(canary, 'qwen@4', 10), canary.revision);

  const cached = new ModelResolver({ aliases: new AliasStore(store, { cacheMs: 3_600_000 }) });
  const uncached = new ModelResolver({ aliases: new AliasStore(store, { cacheMs: 0 }) });
  const keys = Array.from({ length: 1000 }, (_, i) => stickinessKey({ keyId: 'key_bench', session: `s${i}` }));

  const rows = [
    { case: 'no alias: map lookup (before aliases)', ...(await timed(ITERATIONS, () => registry.get('qwen'))) },
    { case: 'exact version (qwen@4), no read', ...(await timed(ITERATIONS, () => cached.resolve('qwen@4', keys[0]!, registry))) },
    { case: 'alias, cache hit, one target', ...(await timed(ITERATIONS, (i) => cached.resolve('stable', keys[i % 1000]!, registry))) },
    { case: 'alias, cache hit, canary + sticky hash', ...(await timed(ITERATIONS, (i) => cached.resolve('canary', keys[i % 1000]!, registry))) },
    { case: 'alias, cache miss (GetItem, DynamoDB Local)', ...(await timed(MISS_ITERATIONS, (i) => uncached.resolve('canary', keys[i % 1000]!, registry))) },
  ];
  client.destroy();

  const result = { date: new Date().toISOString(), node: process.version, note: 'one process; shared 2-core machine, numbers are noisy', rows };
  await mkdir(path.join(ROOT, 'bench', 'results'), { recursive: true });
  await writeFile(path.join(ROOT, 'bench', 'results', 'aliases.json'), `${JSON.stringify(result, null, 2)}\n`);
  const ms = (value: number) => value.toFixed(4);
  console.log('| case | p50 ms | p99 ms | iterations |\n|---|---:|---:|---:|');
  for (const row of rows) console.log(`| ${row.case} | ${ms(row.p50Ms)} | ${ms(row.p99Ms)} | ${row.iterations} |`);
} finally {
  await local.stop();
}
