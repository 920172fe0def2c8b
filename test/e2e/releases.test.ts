// Releasing a model version with real parts: two local packages from the builder in onnxruntime,
// a deliberately broken upstream, DynamoDB Local, the `aigw models alias` CLI, a second gateway
// as its own `aigw serve` process, and the official openai client.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdmissionControl, authenticateApiKey, createApiKey } from '../../src/admission/index.js';
import { serveNode } from '../../src/adapters/node-server.js';
import { engineBackend } from '../../src/backends/engine-backend.js';
import { parseConfig } from '../../src/config/index.js';
import { loadModel } from '../../src/engine/index.js';
import { createGateway } from '../../src/gateway.js';
import { AliasStore, CircuitBreakers, ModelRegistry, createModelResolver, upstreamModelBackend, withRouting } from '../../src/routing/index.js';
import type { Store } from '../../src/store/index.js';
import { createTestStore, providedDynamoDb } from '../setup/store.js';
import { ensureTestModel } from '../helpers/test-models.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CACHE_SECONDS = 1;
const messages = [{ role: 'user' as const, content: 'Hello there' }];

let store: Store;
let apiKey: string;
let cliEnv: NodeJS.ProcessEnv;
let packages: { v3: string; v4: string };
let broken: Server;
let brokenUrl: string;
let gateway: { url: string; close(): Promise<void> };
const logs: Record<string, unknown>[] = [];
let client: OpenAI;
let tmp: string;

function aigw(...args: string[]) {
  return promisify(execFile)(process.execPath, [path.join(ROOT, 'bin/aigw.mjs'), ...args], { env: cliEnv, cwd: tmp });
}

async function servedBy(target: OpenAI, model: string, session: string, extra: { user?: string } = {}): Promise<string> {
  const reply = await target.chat.completions.create({ model, messages, max_tokens: 1, temperature: 0, ...extra }, { headers: { 'x-aigw-session': session } });
  return reply.model;
}

beforeAll(async () => {
  store = await createTestStore('releases');
  apiKey = (await createApiKey(store, { name: 'releases' })).key;
  const { endpoint, credentials } = providedDynamoDb();
  tmp = await mkdtemp(path.join(tmpdir(), 'aigw-releases-'));
  cliEnv = {
    ...process.env,
    AIGW_DYNAMODB_ENDPOINT: endpoint,
    AIGW_DYNAMODB_TABLE: store.tableName,
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    AIGW_ALIASES_CACHE_SECONDS: String(CACHE_SECONDS),
    // The shared 2-core machine: DynamoDB Local's first answer to a fresh process can take over a second.
    AIGW_DYNAMODB_TIMEOUT_MS: '5000',
  };
  // Two different packages stand for two versions of one model.
  packages = {
    v3: await ensureTestModel({ layout: 'optimum', precision: 'int4' }),
    v4: await ensureTestModel({ layout: 'genai', precision: 'int4' }),
  };
  // The canary that fails on purpose: an OpenAI-compatible server answering every call with a 500.
  broken = createServer((_req, res) => {
    res.writeHead(500, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message: 'boom', type: 'server_error', param: null, code: null } }));
  });
  await new Promise<void>((resolve) => broken.listen(0, '127.0.0.1', resolve));
  brokenUrl = `http://127.0.0.1:${(broken.address() as AddressInfo).port}/v1`;

  const [m3, m4] = await Promise.all([loadModel(packages.v3, { threads: 1 }), loadModel(packages.v4, { threads: 1 })]);
  const upstream = parseConfig(
    `[[models]]\nname = "qwen"\nversion = "5"\nbase_url = "${brokenUrl}"\ncontext_length = 2048\ninput_usd_per_million_tokens = "0"\noutput_usd_per_million_tokens = "0"\n`,
    {},
  ).models![0]!;
  const registry = new ModelRegistry([
    engineBackend(m3, 'qwen', { version: 'qwen@3', batchSize: 16 }),
    engineBackend(m4, 'qwen', { version: 'qwen@4', batchSize: 16 }),
    upstreamModelBackend(upstream, undefined),
  ]);
  const logger = { info: (message: string, ...extra: Record<string, unknown>[]) => logs.push(Object.assign({ message }, ...extra)) };
  // A route over the bare name: it must follow the alias of that name once one exists.
  const backends = withRouting(registry.backends(), {
    routes: new Map([['smart', { defaultTarget: 'qwen', rules: [] }]]),
    fallbacks: new Map(),
    firstTokenTimeoutMs: 30_000,
    stallTimeoutMs: 15_000,
    breakers: new CircuitBreakers({ failureThreshold: 3, cooldownMs: 30_000 }),
  });
  const handler = createGateway({
    backends,
    aliases: createModelResolver(store, { cacheMs: CACHE_SECONDS * 1000, logger, health: { checkIntervalMs: 0 }, audit: { actor: 'gw-releases-test', retentionDays: 180 } }),
    defaultModel: 'qwen',
    authenticate: (presented) => authenticateApiKey(store, presented),
    logger,
    maxRequestBytes: 1 << 20,
    logPrompts: false,
    // Unlimited: the test sends its callers 20 at a time.
    admission: { control: new AdmissionControl(store, { leaseSeconds: 60 }), plans: { free: {} }, failOpen: false, modelCaps: new Map() },
  });
  gateway = await serveNode(handler, { host: '127.0.0.1', port: 0 });
  // The client's own retry on a dropped keep-alive connection (seen once under heavy load); answers are deterministic.
  client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey, maxRetries: 2 });
});

afterAll(async () => {
  await gateway?.close();
  await new Promise((resolve) => broken?.close(resolve));
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('aliases through the openai client', () => {
  it('a bare name is its first listed version until an alias says otherwise; exact versions always work', async () => {
    expect(await servedBy(client, 'qwen', 's')).toBe('qwen@3');
    expect(await servedBy(client, 'qwen@4', 's')).toBe('qwen@4');
    const raw = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'qwen@4', messages, max_tokens: 1 }),
    });
    expect(raw.headers.get('x-aigw-model-version')).toBe('qwen@4');
    const ids = (await client.models.list()).data.map((m) => m.id);
    expect(ids).toEqual(expect.arrayContaining(['qwen', 'qwen@3', 'qwen@4', 'qwen@5']));
  });

  it('splits a canary by its weight (30 % within ±10 points over 200 callers) and keeps each caller on one version', async () => {
    await aigw('models', 'alias', 'set', 'chat', 'qwen@3');
    const { stdout } = await aigw('models', 'alias', 'canary', 'chat', 'qwen@4', '--weight', '30', '--no-auto-rollback');
    expect(stdout).toContain('chat: qwen@3: 70, qwen@4: 30');
    // Another process wrote the alias: wait out this gateway's copy of "no such alias".
    await new Promise((resolve) => setTimeout(resolve, CACHE_SECONDS * 1000 + 200));

    const callers = 200;
    const served: string[] = [];
    for (let i = 0; i < callers; i += 10) {
      served.push(...(await Promise.all(Array.from({ length: 10 }, (_, j) => servedBy(client, 'chat', `caller-${i + j}`)))));
    }
    expect(new Set(served)).toEqual(new Set(['qwen@3', 'qwen@4']));
    const share = served.filter((m) => m === 'qwen@4').length / callers;
    expect(Math.abs(share - 0.3)).toBeLessThanOrEqual(0.1);

    for (const i of [0, 1, 2, 3, 4, 5]) {
      const again = await Promise.all(Array.from({ length: 5 }, () => servedBy(client, 'chat', `caller-${i}`)));
      expect(new Set(again)).toEqual(new Set([served[i]]));
    }
    // The `user` field keeps an end user on one version too, without the session header.
    const byUser = await Promise.all(Array.from({ length: 6 }, () => servedBy(client, 'chat', '', { user: 'end-user-7' })));
    expect(new Set(byUser).size).toBe(1);

    const ids = (await client.models.list()).data.map((m) => m.id);
    expect(ids).toContain('chat');
  });

  it('a rollback reaches a second gateway process within the cache bound', async () => {
    const toml = path.join(tmp, 'second-gateway.toml');
    // The builder's packages are both version 1: two model names, qwen@1 and other@1.
    await writeFile(
      toml,
      `[[models]]\nname = "qwen"\npath = "${packages.v3}"\n[[models]]\nname = "other"\npath = "${packages.v4}"\n[monitoring]\nmetrics = "off"\n[performance]\nthreads = 1\n`,
    );
    const child: ChildProcess = spawn(process.execPath, [path.join(ROOT, 'bin/aigw.mjs'), 'serve', '-c', toml, '--port', '0'], { env: cliEnv, cwd: tmp, stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let text = '';
        child.stderr!.on('data', (chunk) => {
          text += String(chunk);
          const match = /on (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(text);
          if (match) resolve(match[1]!);
        });
        child.once('exit', (code) => reject(new Error(`aigw serve exited (${code}): ${text}`)));
      });
      const second = new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0 });
      await aigw('models', 'alias', 'set', 'rel', 'qwen@1');
      await aigw('models', 'alias', 'canary', 'rel', 'other@1', '--weight', '50', '--no-auto-rollback');
      await new Promise((resolve) => setTimeout(resolve, CACHE_SECONDS * 1000 + 200));
      let session = '';
      for (let i = 0; i < 40 && !session; i++) if ((await servedBy(second, 'rel', `probe-${i}`)) === 'other@1') session = `probe-${i}`;
      expect(session).not.toBe('');

      await aigw('models', 'alias', 'rollback', 'rel');
      const rolledBackAt = performance.now();
      let elapsedMs = Infinity;
      for (;;) {
        if ((await servedBy(second, 'rel', session)) === 'qwen@1') {
          elapsedMs = performance.now() - rolledBackAt;
          break;
        }
        // A liveness bound the release process promises (cache_seconds), with a wide margin for load.
        if (performance.now() - rolledBackAt > CACHE_SECONDS * 1000 + 10_000) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(elapsedMs).toBeLessThan(CACHE_SECONDS * 1000 + 10_000);
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(undefined)));
    }
  });

  it('rolls a failing canary back on its own, in one conditional write, and says so', async () => {
    await aigw('models', 'alias', 'set', 'auto', 'qwen@3');
    await aigw('models', 'alias', 'canary', 'auto', 'qwen@5', '--weight', '50', '--min-requests', '5', '--window-seconds', '60');
    await new Promise((resolve) => setTimeout(resolve, CACHE_SECONDS * 1000 + 200));
    const aliases = new AliasStore(store, { cacheMs: 0 });
    // No retries: each 502 the client sees is one failed canary request.
    const once = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey, maxRetries: 0 });

    let failures = 0;
    for (let i = 0; i < 200 && (await aliases.read('auto'))?.canary; i++) {
      const outcome = await servedBy(once, 'auto', `auto-${i}`).catch((error: unknown) => error);
      if (outcome instanceof OpenAI.APIError) {
        expect(outcome.status).toBe(502);
        failures++;
      }
    }
    const record = await aliases.read('auto');
    expect(record?.canary).toBeUndefined();
    expect(record).toMatchObject({ stable: 'qwen@3', lastChange: { action: 'auto-rollback', reason: expect.stringMatching(/error rate 100\.0%/) } });
    expect(failures).toBeGreaterThanOrEqual(5);
    const audit = logs.filter((line) => line.message === 'alias_auto_rollback');
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ alias: 'auto', canary: 'qwen@5', stable: 'qwen@3' });
    // ... and an audit record says so, in a chain that verifies, read back through the CLI.
    const listed = (await aigw('audit', 'list', '--kind', 'auto_rolled_back')).stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line));
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ kind: 'auto_rolled_back', actor: 'gw-releases-test', data: { alias: 'auto', canary: 'qwen@5', stable: 'qwen@3', reason: expect.stringMatching(/error rate/) } });
    expect(listed[0].data.stats.canary.errors).toBeGreaterThanOrEqual(5);
    expect((await aigw('audit', 'verify')).stdout).toMatch(/audit trail intact/);

    // After the bound every caller is on stable again.
    await new Promise((resolve) => setTimeout(resolve, CACHE_SECONDS * 1000 + 200));
    const after = await Promise.all(Array.from({ length: 10 }, (_, i) => servedBy(client, 'auto', `auto-${i}`)));
    expect(new Set(after)).toEqual(new Set(['qwen@3']));
    const show = await aigw('models', 'alias', 'show', 'auto');
    expect(show.stdout).toMatch(/auto: qwen@3: 100/);
    expect(show.stdout).toMatch(/auto-rollback/);
  });

  it("a route's target follows the alias named like it: same canary split, same caller on the same version", async () => {
    // Before any alias `qwen`: the route serves the bare name's first version.
    expect(await servedBy(client, 'smart', 'route-0')).toBe('qwen@3');
    await aigw('models', 'alias', 'set', 'qwen', 'qwen@3');
    await aigw('models', 'alias', 'canary', 'qwen', 'qwen@4', '--weight', '50', '--no-auto-rollback');
    await new Promise((resolve) => setTimeout(resolve, CACHE_SECONDS * 1000 + 200));

    const callers = Array.from({ length: 40 }, (_, i) => `route-${i}`);
    const viaRoute = await Promise.all(callers.map((caller) => servedBy(client, 'smart', caller)));
    expect(new Set(viaRoute)).toEqual(new Set(['qwen@3', 'qwen@4']));
    // The assignment is the alias's own: naming the alias directly lands each caller on the same version.
    const direct = await Promise.all(callers.map((caller) => servedBy(client, 'qwen', caller)));
    expect(direct).toEqual(viaRoute);

    await aigw('models', 'alias', 'rollback', 'qwen');
    await new Promise((resolve) => setTimeout(resolve, CACHE_SECONDS * 1000 + 200));
    const after = await Promise.all(callers.slice(0, 10).map((caller) => servedBy(client, 'smart', caller)));
    expect(new Set(after)).toEqual(new Set(['qwen@3']));
  });
});
