// The request's path through DynamoDB, counted on the real client against DynamoDB Local: at most
// one round trip before the first byte (cache lookup beside admission), settlement after the last
// byte, retried when it fails, never counted twice; a cache hit still counts toward request limits.
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { authenticateApiKey } from '../../src/admission/index.js';
import { itemKeys } from '../../src/store/index.js';
import { recordDynamoDbCalls, roundTripsBefore, type CallRecorder, type DynamoDbCall } from '../helpers/dynamodb-calls.js';
import { TEST_MODEL_ID, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';

let gateway: TestGateway | undefined;
afterEach(async () => {
  await gateway?.close();
  gateway = undefined;
});

interface Timed {
  status: number;
  firstByte: number;
  lastByte: number;
  text: string;
}

/** POSTs a chat completion and notes when its first and last bytes arrived. */
async function timedChat(gw: TestGateway, body: object, headers: Record<string, string> = {}): Promise<Timed> {
  const response = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${gw.apiKey}`, ...headers },
    body: JSON.stringify({ model: TEST_MODEL_ID, messages: [{ role: 'user', content: 'Hello there' }], max_tokens: 4, ...body }),
  });
  const reader = response.body!.getReader();
  let firstByte = 0;
  let text = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    firstByte ||= performance.now();
    text += Buffer.from(value).toString('utf8');
  }
  return { status: response.status, firstByte, lastByte: performance.now(), text };
}

const isAdmission = (c: DynamoDbCall) => c.command === 'UpdateCommand' && c.pk?.startsWith('LIMITS#') && c.condition !== 'attribute_exists(#r0)';
const isSettlement = (c: DynamoDbCall) => c.command === 'UpdateCommand' && c.pk?.startsWith('LIMITS#') && c.condition === 'attribute_exists(#r0)';
const isRollUp = (c: DynamoDbCall) => c.command === 'UpdateCommand' && c.pk?.startsWith('USAGE#');
/**
 * What the response hands to waitUntil (settlement, a hit's release, the roll-up, the cache write):
 * it may start while the last bytes are on their way; 'does not hold the response' shows the
 * response does not wait for it.
 */
const afterResponse = (c: DynamoDbCall) => isSettlement(c) || isRollUp(c) || c.command === 'BatchWriteCommand';
/** The DynamoDB round trips the first byte waited for. */
const waitedFor = (calls: CallRecorder, reply: Timed) => roundTripsBefore(calls.calls.filter((c) => !afterResponse(c)), reply.firstByte);

async function limitsOf(gw: TestGateway): Promise<Record<string, unknown>> {
  const key = (await authenticateApiKey(gw.store, gw.apiKey))!;
  const out = await gw.store.client.send(new GetCommand({ TableName: gw.store.tableName, Key: itemKeys.keyLimits(key.keyId), ConsistentRead: true }));
  return out.Item ?? {};
}

async function started(options: Parameters<typeof startTestGateway>[0] = {}): Promise<{ gw: TestGateway; calls: CallRecorder }> {
  gateway = await startTestGateway(options);
  const calls = recordDynamoDbCalls(gateway.store);
  // The key lookup is cached in-process after the first request: warm it, then count from zero.
  expect((await timedChat(gateway, {}, { 'x-aigw-skip-cache': 'true' })).status).toBe(200);
  await waitFor(() => calls.calls.filter(isSettlement).length === 1 && calls.calls.every((c) => c.end !== undefined));
  calls.reset();
  return { gw: gateway, calls };
}

/** Polls until `condition` holds: settlement runs after the response, on its own time. */
async function waitFor(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe('the normal path', () => {
  it('answers a streamed miss after one DynamoDB round trip (cache lookup beside admission), settles after the last byte', async () => {
    const { gw, calls } = await started();
    const reply = await timedChat(gw, { stream: true, temperature: 0 });
    expect(reply.status).toBe(200);
    expect(reply.text).toContain('data: [DONE]');
    await waitFor(() => calls.calls.some(isRollUp) && calls.calls.every((c) => c.end !== undefined));

    // A stream's first byte (the role chunk) follows the first token: only admission and the cache read are before it.
    const beforeFirstByte = calls.calls.filter((c) => c.start < reply.firstByte);
    expect(beforeFirstByte.map((c) => c.command).sort()).toEqual(['GetCommand', 'UpdateCommand']);
    expect(beforeFirstByte.some(isAdmission)).toBe(true);
    expect(roundTripsBefore(calls.calls, reply.firstByte)).toBe(1);
    // Per request: admission, cache read, cache write, settlement, usage roll-up.
    expect(calls.calls.map((c) => c.command).sort()).toEqual(['BatchWriteCommand', 'GetCommand', 'UpdateCommand', 'UpdateCommand', 'UpdateCommand']);
    expect(calls.calls.filter(isSettlement)).toHaveLength(1);
  });

  it('a request that skips the cache costs admission before the first byte, settlement and roll-up after', async () => {
    const { gw, calls } = await started();
    const reply = await timedChat(gw, {}, { 'x-aigw-skip-cache': 'true' });
    expect(reply.status).toBe(200);
    await waitFor(() => calls.calls.some(isRollUp) && calls.calls.every((c) => c.end !== undefined));
    expect(waitedFor(calls, reply)).toBe(1);
    expect(calls.calls.filter((c) => c.start < reply.firstByte && !afterResponse(c)).every(isAdmission)).toBe(true);
    expect(calls.calls).toHaveLength(3);
  });

  it('does not hold the response for the settlement: the last byte arrives while it is still being written', async () => {
    const { gw, calls } = await started();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    calls.intercept.before = async (call) => {
      if (isSettlement(call)) await held;
    };
    const reply = await timedChat(gw, {}, { 'x-aigw-skip-cache': 'true' });
    expect(reply.status).toBe(200);
    const settlement = calls.calls.find(isSettlement)!;
    expect(settlement).toBeDefined();
    expect(settlement.end).toBeUndefined();
    release();
    await waitFor(() => calls.calls.some(isRollUp) && calls.calls.every((c) => c.end !== undefined));
    expect(settlement.end).toBeGreaterThan(reply.lastByte);
    expect((await limitsOf(gw)).conc).toBe(0);
  });

  it('answers a cache hit after one round trip and counts it toward request limits only', async () => {
    const { gw, calls } = await started();
    const first = await timedChat(gw, { temperature: 0, messages: [{ role: 'user', content: 'cache me' }] });
    expect(first.status).toBe(200);
    await waitFor(() => calls.calls.some(isRollUp) && calls.calls.every((c) => c.end !== undefined));
    const afterMiss = await limitsOf(gw);
    calls.reset();

    const hit = await timedChat(gw, { temperature: 0, messages: [{ role: 'user', content: 'cache me' }] });
    expect(hit.status).toBe(200);
    expect(hit.text).toBe(first.text.replace(/"id":"[^"]+"/, hit.text.match(/"id":"[^"]+"/)![0]).replace(/"created":\d+/, hit.text.match(/"created":\d+/)![0]));
    await waitFor(() => calls.calls.some(isRollUp) && calls.calls.every((c) => c.end !== undefined));
    expect(waitedFor(calls, hit)).toBe(1);
    expect(calls.calls.filter((c) => c.start < hit.firstByte && !afterResponse(c)).map((c) => c.command).sort()).toEqual(['GetCommand', 'UpdateCommand']);
    const afterHit = await limitsOf(gw);
    const minute = Object.keys(afterHit).find((a) => a.startsWith('rpm_'))!;
    const tokens = Object.keys(afterHit).find((a) => a.startsWith('tpm_'))!;
    // One more request in the minute; nothing in flight, no tokens, no spend for the hit.
    expect(afterHit[minute]).toBe((afterMiss[minute] as number) + 1);
    expect(afterHit[tokens]).toBe(afterMiss[tokens]);
    expect(afterHit.conc).toBe(0);
    expect(Object.keys(afterHit).filter((a) => a.startsWith('h_'))).toEqual([]);
  });
});

describe('settlement that fails', () => {
  it('is retried until it lands, and the slot comes back', async () => {
    const { gw, calls } = await started({ key: { limits: { maxConcurrentRequests: 1 } } });
    let failures = 2;
    calls.intercept.before = (call) => {
      if (isSettlement(call) && failures-- > 0) throw new Error('connect ECONNREFUSED (injected)');
    };
    expect((await timedChat(gw, {}, { 'x-aigw-skip-cache': 'true' })).status).toBe(200);
    await waitFor(() => calls.calls.some(isRollUp) && calls.calls.every((c) => c.end !== undefined));
    expect(calls.calls.filter(isSettlement).map((c) => c.failed ?? false)).toEqual([true, true, false]);
    const item = await limitsOf(gw);
    expect(item.conc).toBe(0);
    expect(Object.keys(item).filter((a) => a.startsWith('h_'))).toEqual([]);
    expect((await timedChat(gw, {}, { 'x-aigw-skip-cache': 'true' })).status).toBe(200);
  });

  it('is counted once when a try landed but its answer was lost', async () => {
    const { gw, calls } = await started({ key: { limits: { maxConcurrentRequests: 2 } } });
    let lose = 1;
    calls.intercept.after = (call) => {
      if (isSettlement(call) && lose-- > 0) throw new Error('socket hang up (injected after the write landed)');
    };
    expect((await timedChat(gw, {}, { 'x-aigw-skip-cache': 'true' })).status).toBe(200);
    await waitFor(() => calls.calls.some(isRollUp) && calls.calls.every((c) => c.end !== undefined));
    // The retry finds the hold gone (the first try had landed) and stops there.
    expect(calls.calls.filter(isSettlement).map((c) => c.error)).toEqual(['Error', 'ConditionalCheckFailedException']);
    const item = await limitsOf(gw);
    expect(item.conc).toBe(0);
    // The day's committed tokens are exactly what the two requests used (the warm-up and this
    // one), as the usage roll-up counts them: the retry found the hold gone and added nothing.
    const key = (await authenticateApiKey(gw.store, gw.apiKey))!;
    const day = Object.keys(item).find((a) => a.startsWith('tok_d_'))!.slice('tok_d_'.length);
    const usage = (await gw.store.client.send(new GetCommand({ TableName: gw.store.tableName, Key: itemKeys.usage(key.keyId, day), ConsistentRead: true }))).Item!;
    expect(usage.requests).toBe(2);
    expect(item[`tok_d_${day}`]).toBe((usage.promptTokens as number) + (usage.completionTokens as number));
  });
});
