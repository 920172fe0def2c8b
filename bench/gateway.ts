// Gateway benchmark (npm run bench:gateway): what a gateway adds in front of an instant
// OpenAI-compatible upstream (bench/instant-upstream.ts), measured with autocannon in one run for
// Portkey's gateway (@portkey-ai/gateway, the upstream as an openai provider with a custom host),
// aigw with keys, admission and cache off, and aigw with everything on (DynamoDB Local), at
// concurrency 1, 16 and 64; plus the DynamoDB calls per request aigw's client made (alone and under
// load), and the store alone (bench/store-floor.ts: the five calls of a lone request with no
// gateway around them), which says how much of what aigw adds is DynamoDB Local's. Every request is a distinct chat completion (the
// cache is consulted and misses). Writes bench/results/gateway.json and prints a markdown table.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { createInterface, type Interface } from 'node:readline';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { startDynamoDbLocal } from '../src/store/index.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
// AIGW_BENCH_SECONDS shortens a run for a smoke test; the recorded results use the default.
const DURATION_SECONDS = Number(process.env.AIGW_BENCH_SECONDS ?? 8);
const WARMUP_SECONDS = Math.min(4, DURATION_SECONDS);
const CONCURRENCY = [1, 16, 64];
const CALL_COUNT_REQUESTS = 50;

interface Target {
  name: string;
  url: string;
  headers: Record<string, string>;
  process: ChildProcess;
  lines?: Interface;
}

/** Starts a node process and resolves with the first JSON line it prints. */
async function startProcess(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcess; info: Record<string, string>; lines: Interface }> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const iterator = lines[Symbol.asyncIterator]();
  for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
    if (next.value.startsWith('{')) return { child, info: JSON.parse(next.value) as Record<string, string>, lines };
  }
  throw new Error(`${args.join(' ')} exited before it was ready`);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function startPortkey(upstreamUrl: string): Promise<Target> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    ['--import', path.join(ROOT, 'bench', 'loopback-only.mjs'), path.join(ROOT, 'node_modules', '@portkey-ai', 'gateway', 'build', 'start-server.js'), `--port=${port}`, '--headless'],
    { cwd: ROOT, env: { ...process.env, NODE_ENV: 'production' }, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const target: Target = {
    name: 'Portkey',
    url: `http://127.0.0.1:${port}`,
    headers: { 'x-portkey-provider': 'openai', 'x-portkey-custom-host': `${upstreamUrl}/v1`, authorization: 'Bearer sk-bench' },
    process: child,
  };
  for (let tries = 0; ; tries++) {
    const ok = await post(target).catch(() => false);
    if (ok) return target;
    if (tries > 100) throw new Error('Portkey did not answer a chat completion within 20 s');
    await delay(200);
  }
}

let counter = 0;
const body = () => JSON.stringify({ model: 'instant', messages: [{ role: 'user', content: `Hello there #${++counter}` }], max_tokens: 16, temperature: 0 });

async function post(target: Target): Promise<boolean> {
  const response = await fetch(`${target.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...target.headers },
    body: body(),
  });
  const text = await response.text();
  return response.ok && text.includes('Hello from upstream');
}

interface Measurement {
  p50Ms: number;
  p99Ms: number;
  requestsPerSecond: number;
  requests: number;
  errors: number;
}

async function load(target: Target, connections: number, duration = DURATION_SECONDS): Promise<Measurement> {
  const result = await autocannon({
    url: `${target.url}/v1/chat/completions`,
    method: 'POST',
    connections,
    duration,
    headers: { 'content-type': 'application/json', ...target.headers },
    // A distinct prompt per request: aigw's cache looks up and misses, as for new traffic.
    requests: [{ setupRequest: (request) => ({ ...request, body: body() }) }],
  });
  return {
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    requestsPerSecond: result.requests.average,
    requests: result.requests.total,
    errors: result.non2xx + result.errors + result.timeouts,
  };
}

async function dynamoDbCalls(target: Target): Promise<number> {
  const answer = new Promise<number>((resolve) => target.lines!.once('line', (line) => resolve((JSON.parse(line) as { calls: number }).calls)));
  target.process.stdin!.write('calls\n');
  return answer;
}

async function main(): Promise<void> {
  const dynamo = await startDynamoDbLocal();
  const env = { AIGW_BENCH_DYNAMODB: dynamo.endpoint, AIGW_BENCH_KEY_ID: dynamo.credentials.accessKeyId, AIGW_BENCH_SECRET: dynamo.credentials.secretAccessKey };
  const children: ChildProcess[] = [];
  try {
    const upstreamProcess = await startProcess(['--import', 'tsx', path.join(ROOT, 'bench', 'instant-upstream.ts')]);
    children.push(upstreamProcess.child);
    const upstreamUrl = upstreamProcess.info.url!;
    const upstream: Target = { name: 'upstream alone', url: upstreamUrl, headers: {}, process: upstreamProcess.child };
    const aigw = async (mode: 'bare' | 'full', name: string): Promise<Target> => {
      const started = await startProcess(['--import', 'tsx', path.join(ROOT, 'bench', 'gateway-server.ts'), mode, upstreamUrl], env);
      children.push(started.child);
      const { url, apiKey } = started.info as { url: string; apiKey: string };
      return { name, url, headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {}, process: started.child, lines: started.lines };
    };
    const bare = await aigw('bare', 'aigw bare');
    const full = await aigw('full', 'aigw, everything on');
    const floorProcess = await startProcess(['--import', 'tsx', path.join(ROOT, 'bench', 'store-floor.ts'), upstreamUrl], env);
    children.push(floorProcess.child);
    const floor: Target = { name: 'store alone (5 DynamoDB calls a request, no gateway)', url: floorProcess.info.url!, headers: {}, process: floorProcess.child };
    const portkey = await startPortkey(upstreamUrl);
    children.push(portkey.process);
    const targets = [upstream, portkey, bare, floor, full];
    for (const target of targets) {
      if (!(await post(target))) throw new Error(`${target.name} did not answer a chat completion`);
    }

    // Warm-up: V8 and DynamoDB Local's JVM compile hot paths during the first seconds of load.
    console.error('warming up ...');
    for (const target of targets) await load(target, 4, WARMUP_SECONDS);

    // DynamoDB calls per request, on quiet ground: sequential requests, then a pause for the work
    // that follows each response (settlement, cache write, roll-up), counted on aigw's client.
    const before = await dynamoDbCalls(full);
    for (let i = 0; i < CALL_COUNT_REQUESTS; i++) await post(full);
    await delay(2_000);
    const dynamoDbCallsPerRequest = ((await dynamoDbCalls(full)) - before) / CALL_COUNT_REQUESTS;

    const rows: { concurrency: number; runs: Record<string, Measurement>; callsPerRequest: number }[] = [];
    for (const connections of CONCURRENCY) {
      const runs: Record<string, Measurement> = {};
      let callsPerRequest = 0;
      for (const target of targets) {
        console.error(`concurrency ${connections}: ${target.name} ...`);
        const callsBefore = target === full ? await dynamoDbCalls(full) : 0;
        runs[target.name] = await load(target, connections);
        if (target === full) {
          await delay(1_000); // the last requests' after-response writes
          callsPerRequest = ((await dynamoDbCalls(full)) - callsBefore) / runs[target.name]!.requests;
        }
      }
      rows.push({ concurrency: connections, runs, callsPerRequest });
    }

    const added = (row: (typeof rows)[number], name: string) => ({
      p50Ms: row.runs[name]!.p50Ms - row.runs[upstream.name]!.p50Ms,
      p99Ms: row.runs[name]!.p99Ms - row.runs[upstream.name]!.p99Ms,
    });
    const at16 = rows.find((r) => r.concurrency === 16)!;
    const targetsMet = {
      bareAddsNoMoreThanPortkey: rows.every((r) => added(r, bare.name).p50Ms <= added(r, portkey.name).p50Ms),
      fullAddsAtMostTwicePortkeyAt16: added(at16, full.name).p50Ms <= 2 * added(at16, portkey.name).p50Ms,
    };
    // What aigw adds beyond what its DynamoDB calls cost on their own.
    const overFloor = rows.map((r) => ({ concurrency: r.concurrency, p50Ms: added(r, full.name).p50Ms - added(r, floor.name).p50Ms }));
    await mkdir(path.join(ROOT, 'bench', 'results'), { recursive: true });
    await writeFile(
      path.join(ROOT, 'bench', 'results', 'gateway.json'),
      `${JSON.stringify({ date: new Date().toISOString(), durationSeconds: DURATION_SECONDS, dynamoDbCallsPerRequest, rows: rows.map((r) => ({ ...r, added: Object.fromEntries([portkey, bare, floor, full].map((t) => [t.name, added(r, t.name)])) })), overFloor, targetsMet }, null, 2)}\n`,
    );

    const f = (n: number) => n.toFixed(1);
    const lines = [
      '| concurrency | gateway | p50 ms | p99 ms | added p50 ms | added p99 ms | req/s | errors |',
      '|---:|---|---:|---:|---:|---:|---:|---:|',
      ...rows.flatMap((r) =>
        targets.map((t) => {
          const m = r.runs[t.name]!;
          const a = t === upstream ? undefined : added(r, t.name);
          return `| ${r.concurrency} | ${t.name} | ${f(m.p50Ms)} | ${f(m.p99Ms)} | ${a ? f(a.p50Ms) : ''} | ${a ? f(a.p99Ms) : ''} | ${f(m.requestsPerSecond)} | ${m.errors} |`;
        }),
      ),
      '',
      `DynamoDB calls per request, counted on aigw's client over ${CALL_COUNT_REQUESTS} sequential requests: aigw bare 0, aigw with everything on ${dynamoDbCallsPerRequest.toFixed(2)} ` +
        '(admission and the cache read side by side before the first byte; cache write, settlement and usage roll-up after the response; the key record every 5 s).',
      `Targets: aigw bare adds no more than Portkey (p50, every concurrency): ${targetsMet.bareAddsNoMoreThanPortkey ? 'met' : 'NOT met'}; ` +
        `aigw with everything on adds at most 2x Portkey at concurrency 16 (p50): ${targetsMet.fullAddsAtMostTwicePortkeyAt16 ? 'met' : 'NOT met'}.`,
      `DynamoDB calls per request under load, aigw with everything on (after-response writes group-committed): ${rows.map((r) => `c${r.concurrency} ${r.callsPerRequest.toFixed(2)}`).join(', ')}.`,
      `aigw with everything on minus the store alone (added p50): ${overFloor.map((o) => `c${o.concurrency} ${f(o.p50Ms)} ms`).join(', ')}.`,
      `${DURATION_SECONDS} s per run with autocannon after a ${WARMUP_SECONDS} s warm-up of each; non-streamed chat completions, a distinct prompt each; ` +
        'added = the gateway minus the upstream alone at the same concurrency; every process (load generator, upstream, gateways, DynamoDB Local) on the same machine.',
    ];
    console.log(lines.join('\n'));
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await dynamo.stop();
  }
}

await main();
