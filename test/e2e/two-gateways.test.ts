// Two local gateways on one database, the supported way: `aigw serve`, then `aigw serve --join`
// in the same folder (it reads .aigw/dynamodb/running.json: the endpoint, region and credentials of
// the first one's DynamoDB Local). They share keys and limits exactly; `aigw usage` reads the
// roll-up both write; AIGW_DYNAMODB_ENDPOINT pointed at that DynamoDB Local works without AWS keys.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { AIGW_BIN, AIGW_CONFIG, startAigwServe, type ServingAigw } from '../helpers/aigw-serve.js';
import { waitForRoomInMinute } from '../helpers/minute-window.js';

let folder: string;
const servers: ServingAigw[] = [];

/** The environment without AWS credentials: what a second terminal on a laptop has. */
function plainEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  for (const name of Object.keys(env)) if (name.startsWith('AWS_') || name.startsWith('AIGW_')) delete env[name];
  return { ...env, ...extra };
}

async function serve(...args: string[]): Promise<ServingAigw> {
  const server = await startAigwServe(folder, args, { env: plainEnv() });
  servers.push(server);
  return server;
}

function aigw(args: string[], env = plainEnv(), cwd = folder) {
  return promisify(execFile)(process.execPath, [AIGW_BIN, '--config', AIGW_CONFIG, ...args], { env, cwd });
}

async function chat(url: string, key: string, content: string, headers: Record<string, string> = {}): Promise<number> {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers },
    body: JSON.stringify({ model: 'aigw-tiny', messages: [{ role: 'user', content }], max_tokens: 2, temperature: 0 }),
  });
  await response.arrayBuffer();
  return response.status;
}

beforeAll(async () => {
  folder = await mkdtemp(path.join(tmpdir(), 'aigw-two-'));
});

afterAll(async () => {
  // The joined one first: the first one owns DynamoDB Local.
  for (const server of [...servers].reverse()) await server.stop();
  await rm(folder, { recursive: true, force: true });
});

it('refuses --join with a clear message when no aigw serve runs', async () => {
  const error = await aigw(['serve', '--join', '--port', '0']).catch((e: { code: number; stderr: string }) => e);
  expect((error as { code: number }).code).toBe(1);
  expect((error as { stderr: string }).stderr).toMatch(/--join: no running `aigw serve` found/);
});

it('shares keys, exact limits and the usage roll-up between a gateway and one that joined it', async () => {
  const first = await serve();
  const second = await serve('--join');
  expect(second.url).not.toBe(first.url);

  const created = await aigw(['keys', 'create', '--name', 'shared', '--limit', 'requests_per_minute=3']);
  const key = created.stdout.trim();
  const keyId = /created (key_\w+)/.exec(created.stderr)![1]!;

  // Six requests, alternating between the two processes: the one limit holds across both. They
  // take a few seconds; a burst that straddled a minute would start the count again.
  await waitForRoomInMinute(20);
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) statuses.push(await chat(i % 2 === 0 ? first.url : second.url, key, `hello ${i}`, { 'x-aigw-skip-cache': 'true' }));
  expect(statuses).toEqual([200, 200, 200, 429, 429, 429]);

  // A cache hit on another key: the same deterministic request twice on the second gateway.
  const other = (await aigw(['keys', 'create', '--name', 'cached'])).stdout.trim();
  expect(await chat(second.url, other, 'cache me')).toBe(200);
  expect(await chat(second.url, other, 'cache me')).toBe(200);

  // The roll-up is written after each response: read until both gateways' writes are in.
  type Row = {
    keyId: string;
    requests: number;
    cacheHits: number;
    completionTokens: number;
    costMicros: number;
    costUsd: string;
    rejections: Record<string, number>;
    byVersion: Record<string, { requests: number; cacheHits: number; completionTokens: number; costMicros: number }>;
  };
  let rows: Row[] = [];
  for (;;) {
    rows = JSON.parse((await aigw(['usage', '--json'])).stdout) as Row[];
    const mine = rows.find((r) => r.keyId === keyId);
    const cached = rows.find((r) => r.keyId !== keyId);
    if (mine?.rejections.requests_per_minute === 3 && mine.requests === 3 && cached?.requests === 2) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const mine = rows.find((r) => r.keyId === keyId)!;
  expect(mine).toMatchObject({ requests: 3, cacheHits: 0, rejections: { requests_per_minute: 3 } });
  expect(mine.completionTokens).toBeGreaterThan(0);
  expect(rows.find((r) => r.keyId !== keyId)).toMatchObject({ requests: 2, cacheHits: 1, rejections: {} });
  // The same counts per model version: one version served all of them.
  const versions = Object.entries(mine.byVersion);
  expect(versions).toHaveLength(1);
  expect(versions[0]![0]).toMatch(/^aigw-tiny@./);
  expect(versions[0]![1]).toEqual({ requests: 3, cacheHits: 0, promptTokens: expect.any(Number), completionTokens: mine.completionTokens, costMicros: mine.costMicros });
  expect(Object.values(rows.find((r) => r.keyId !== keyId)!.byVersion)).toEqual([expect.objectContaining({ requests: 2, cacheHits: 1 })]);

  // One key's days as a table; a bad day is refused.
  const table = (await aigw(['usage', '--key', keyId])).stdout;
  expect(table.split('\n')[0]).toMatch(/^day\s+key\s+requests\s+cache_hits/);
  expect(table).toMatch(new RegExp(`${keyId}\\s+3\\s+0\\s+.*requests_per_minute=3\\s+aigw-tiny@\\S+=3`));
  const bad = await aigw(['usage', '--from', '2026-13-01']).catch((e: { code: number; stderr: string }) => e);
  expect((bad as { stderr: string }).stderr).toMatch(/expected a day as YYYY-MM-DD/);

  // Pointing AIGW_DYNAMODB_ENDPOINT at that DynamoDB Local, without AWS credentials, finds the same table.
  const running = JSON.parse(await readFile(path.join(folder, '.aigw/dynamodb/running.json'), 'utf8')) as { endpoint: string };
  const listed = await aigw(['keys', 'list'], plainEnv({ AIGW_DYNAMODB_ENDPOINT: running.endpoint }));
  expect(listed.stdout).toContain(keyId);
});
