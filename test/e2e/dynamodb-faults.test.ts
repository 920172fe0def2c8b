// A DynamoDB that stalls or dies under a real gateway (Node adapter, the demo ONNX model): this file
// starts DynamoDB Local processes of its own, pauses one with SIGSTOP and kills another, and checks
// that every request is answered within [dynamodb] timeout_ms plus a margin, that refusals are 503
// admission_unavailable with Retry-After, that the gateway recovers, and that no slot or budget leaks.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/admission/index.js';
import { createDynamoDbClient, ensureTable, itemKeys, startDynamoDbLocal, tableSchema, type DynamoDbLocal, type Store } from '../../src/store/index.js';
import { startTestGateway, TEST_MODEL_ID, type TestGateway } from '../helpers/test-gateway.js';

/** [dynamodb] timeout_ms for this gateway. */
const TIMEOUT_MS = 1_000;
/**
 * What a request may take beyond one timeout: the one DynamoDB call on a refused request's path
 * (cache off, key known) plus validation, tokenizing and the HTTP round trip on a shared 2-core
 * machine running other test files. A liveness bound (the issue asks for one), not a speed.
 */
const MARGIN_MS = 2_500;
const PLANS = { faults: { max_concurrent_requests: 4, budget_usd_per_day: 100 } };

interface Timed {
  status: number;
  ms: number;
  retryAfter: string | null;
  code?: string;
}

async function chat(gw: TestGateway, apiKey: string): Promise<Timed> {
  const started = performance.now();
  const response = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: TEST_MODEL_ID, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
  });
  const body = (await response.json()) as { error?: { code: string } };
  return { status: response.status, ms: performance.now() - started, retryAfter: response.headers.get('retry-after'), code: body.error?.code };
}

/** A chat answered 200 within ~20 s: a cold (or just resumed) DynamoDB Local may miss the first deadlines. */
async function untilServed(gw: TestGateway, apiKey: string): Promise<void> {
  let last: Timed | undefined;
  for (let attempt = 0; attempt < 40 && last?.status !== 200; attempt++) {
    last = await chat(gw, apiKey);
    if (last.status !== 200) await delay(500);
  }
  expect(last?.status).toBe(200);
}

async function limitsItem(store: Store, keyId: string): Promise<Record<string, unknown>> {
  // A fresh client: the gateway's may still be waiting on the database it saw stall.
  const out = await store.client.send(new GetCommand({ TableName: store.tableName, Key: itemKeys.keyLimits(keyId), ConsistentRead: true }));
  return out.Item ?? {};
}

function expectNothingHeld(item: Record<string, unknown>): void {
  expect(item.conc ?? 0).toBe(0);
  expect(Object.keys(item).filter((a) => a.startsWith('h_'))).toEqual([]);
  // Committed budget (spent + reserved) equals what was spent: no reservation is left over.
  const day = Object.keys(item).find((a) => a.startsWith('usd_d_'));
  if (day) expect(item[day]).toBe(item[day.replace('usd_d_', 'spent_d_')] ?? 0);
}

async function setUp(local: DynamoDbLocal) {
  const store: Store = {
    client: createDynamoDbClient({ endpoint: local.endpoint, region: 'us-east-1', credentials: local.credentials, requestTimeoutMs: TIMEOUT_MS }),
    tableName: 'aigw-faults',
  };
  // Table setup and checks after the fault use a patient client of their own.
  const patient: Store = {
    client: createDynamoDbClient({ endpoint: local.endpoint, region: 'us-east-1', credentials: local.credentials, requestTimeoutMs: 30_000, connectionTimeoutMs: 30_000 }),
    tableName: store.tableName,
  };
  await ensureTable(patient.client, tableSchema(store.tableName));
  const { key, record } = await createApiKey(patient, { name: 'faults', plan: 'faults' });
  const gw = await startTestGateway({ store, cache: false, plans: PLANS, leaseSeconds: 900 });
  return { store, patient, gw, key, keyId: record.keyId };
}

describe('DynamoDB paused (SIGSTOP) mid-traffic', () => {
  let local: DynamoDbLocal;
  let setup: Awaited<ReturnType<typeof setUp>>;

  beforeAll(async () => {
    local = await startDynamoDbLocal();
    setup = await setUp(local);
  });

  afterAll(async () => {
    process.kill(local.pid, 'SIGCONT');
    await setup?.gw.close();
    await local.stop();
  });

  it('answers every request within timeout_ms + margin, 503 admission_unavailable with Retry-After, then recovers with nothing leaked', async () => {
    const { gw, key, keyId, patient } = setup;
    await untilServed(gw, key);

    process.kill(local.pid, 'SIGSTOP');
    let paused: Timed[];
    let health: number;
    try {
      const healthStarted = performance.now();
      const [healthz, ...answers] = await Promise.all([
        fetch(`${gw.url}/healthz`).then(() => performance.now() - healthStarted),
        ...Array.from({ length: 8 }, () => chat(gw, key)),
      ]);
      health = healthz!;
      paused = answers as Timed[];
      // Later requests, after the key's cache entry may have expired, too.
      await delay(5_500);
      paused.push(await chat(gw, key));
    } finally {
      process.kill(local.pid, 'SIGCONT');
    }

    for (const answer of paused) {
      expect(answer.status).toBe(503);
      expect(answer.code).toBe('admission_unavailable');
      expect(Number(answer.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(answer.ms).toBeLessThan(TIMEOUT_MS + MARGIN_MS);
    }
    expect(health).toBeLessThan(MARGIN_MS);

    // Recovery: once DynamoDB answers again, so does the gateway.
    await untilServed(gw, key);

    // Writes that timed out may land when the database resumes; the gateway takes back whatever they
    // counted (in the background), so the key ends with no slot or reservation held.
    await gw.close();
    let item = await limitsItem(patient, keyId);
    for (let attempt = 0; attempt < 40 && ((item.conc as number) ?? 0) !== 0; attempt++) {
      await delay(250);
      item = await limitsItem(patient, keyId);
    }
    expectNothingHeld(item);
  });
});

describe('DynamoDB killed and restarted', () => {
  let dataDir: string;
  let local: DynamoDbLocal;
  let setup: Awaited<ReturnType<typeof setUp>>;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'aigw-faults-'));
    local = await startDynamoDbLocal({ dataDir });
    setup = await setUp(local);
  });

  afterAll(async () => {
    await setup?.gw.close();
    await local.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('refuses fast while it is down and serves again once it is back, with nothing leaked', async () => {
    const { gw, key, keyId, patient } = setup;
    await untilServed(gw, key);
    // Settlement follows the response: let it land before the database dies.
    while (((await limitsItem(patient, keyId)).conc ?? 0) !== 0) await delay(100);

    process.kill(local.pid, 'SIGKILL');
    await local.stop();
    const down = await Promise.all(Array.from({ length: 6 }, () => chat(gw, key)));
    for (const answer of down) {
      expect(answer.status).toBe(503);
      expect(answer.code).toBe('admission_unavailable');
      expect(Number(answer.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(answer.ms).toBeLessThan(TIMEOUT_MS + MARGIN_MS);
    }

    local = await startDynamoDbLocal({ dataDir, port: local.port });
    await untilServed(gw, key);
    await gw.close();
    expectNothingHeld(await limitsItem(patient, keyId));
  });
});
