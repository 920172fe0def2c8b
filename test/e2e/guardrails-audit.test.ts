// Guardrails and the audit trail through the real gateway, the demo model in onnxruntime,
// DynamoDB Local and the official openai client: a blocked prompt costs nothing, output masks and
// blocks hold for streamed and whole answers alike (and in the cache), every request leaves an
// audit record, and neither the API key nor an unlogged prompt appears in any log or record.
import OpenAI from 'openai';
import { GetCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog, appendRequestAudit, listAudit, verifyAudit } from '../../src/audit/index.js';
import { engineBackend } from '../../src/backends/engine-backend.js';
import { CONFIG_DEFAULTS } from '../../src/config/index.js';
import type { GuardrailsConfig } from '../../src/config/guardrails-schema.js';
import { loadModel } from '../../src/engine/index.js';
import { loadGuardrailPolicy } from '../../src/guardrails/index.js';
import { itemKeys } from '../../src/store/index.js';
import { startTestGateway, TEST_MODEL_ID, type TestGateway } from '../helpers/test-gateway.js';
import { ensureTestModel } from '../helpers/test-models.js';

const PROMPT_MARKER = 'zqxmarker7391';
const greedy = { temperature: 0, max_tokens: 24 } as const;
const messages = (content: string) => [{ role: "user" as const, content }];

let gw: TestGateway;
let audit: AuditLog;
let expected: string;
let term: string;
const keys: Record<string, string> = {};

/** What the demo model says to `content`, greedy, with no gateway in between. */
async function modelSays(content: string): Promise<string> {
  const model = await loadModel(await ensureTestModel({ layout: 'optimum', precision: 'int4' }), { threads: 1 });
  const backend = engineBackend(model, TEST_MODEL_ID, {});
  const prepared = await backend.prepare({ kind: 'chat', messages: messages(content) }, { temperature: 0, maxTokens: 24 });
  let text = '';
  for await (const event of prepared.run(new AbortController().signal)) text += event.text;
  return text;
}

beforeAll(async () => {
  expected = await modelSays(`hello ${PROMPT_MARKER}`);
  // A term from the middle of the real output: the gateway must catch it wherever tokens split it.
  term = [...expected].slice(6, 10).join('');
  expect(term.trim().length).toBeGreaterThan(0);
  const config: GuardrailsConfig = {
    ...CONFIG_DEFAULTS.guardrails,
    mask: '[masked]',
    rules: {
      banned: { terms: ['forbidden topic'], whole_words: true, action: 'block', on: ['input'], max_length: 64 },
      cards: { detector: 'payment_card', whole_words: true, action: 'mask', on: ['input', 'output'], max_length: 64 },
      'out-mask': { terms: [term], whole_words: false, action: 'mask', on: ['output'], max_length: 64 },
      'out-block': { terms: [term], whole_words: false, action: 'block', on: ['output'], max_length: 64 },
    },
    apply: ['banned', 'cards', 'out-mask'],
  };
  const policy = loadGuardrailPolicy(config);
  gw = await startTestGateway({
    guardrails: policy,
    onRequestFinished: [(line) => appendRequestAudit(audit, line)],
    key: { plan: 'free' },
  });
  audit = new AuditLog(gw.store, { writer: 'e2e-gateway' });
  keys.masked = gw.apiKey;
  keys.blocking = await gw.createKey({ guardrails: ['banned', 'out-block'] });
  keys.unfiltered = await gw.createKey({ guardrails: [] });
  keys.logged = await gw.createKey({ logPrompts: true });
}, 600_000);

afterAll(async () => {
  await gw?.close();
});

const client = (key: string) => new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key, maxRetries: 0 });

async function streamedText(key: string, content: string): Promise<{ text: string; finish: string | null }> {
  const stream = await client(key).chat.completions.create({ model: TEST_MODEL_ID, messages: messages(content), stream: true, ...greedy });
  let text = '';
  let finish: string | null = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  return { text, finish };
}

describe('guardrails', () => {
  it('refuses a blocked prompt with a 400 content_filter error before admission counts anything', async () => {
    const fresh = await gw.createKey({ guardrails: ['banned'] });
    const error = await client(fresh)
      .chat.completions.create({ model: TEST_MODEL_ID, messages: messages('Tell me about the Forbidden   Topic'.replace('   ', ' ')), ...greedy })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(400);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe('content_filter');
    const keyId = gw.logs.at(-1)!.keyId as string;
    const limits = await gw.store.client.send(new GetCommand({ TableName: gw.store.tableName, Key: itemKeys.keyLimits(keyId) }));
    expect(limits.Item).toBeUndefined();
  });

  it('the unfiltered key sees exactly what the model says (the term is really in the output)', async () => {
    const reply = await client(keys.unfiltered!).chat.completions.create({ model: TEST_MODEL_ID, messages: messages(`hello ${PROMPT_MARKER}`), ...greedy });
    expect(reply.choices[0]!.message.content).toBe(expected);
    expect(expected).toContain(term);
  });

  it('masks the term in whole and streamed answers alike, and the cache serves the masked text', async () => {
    const whole = await client(keys.masked!).chat.completions.create({ model: TEST_MODEL_ID, messages: messages(`hello ${PROMPT_MARKER}`), ...greedy });
    const text = whole.choices[0]!.message.content!;
    expect(text).not.toContain(term);
    expect(text).toContain('[masked]');
    expect(text).toBe(expected.split(term).join('[masked]'));
    const streamed = await streamedText(keys.masked!, `hello ${PROMPT_MARKER}`);
    expect(streamed.text).toBe(text);
    // The streamed request was a cache hit of the whole one: the entry holds filtered text.
    expect(gw.logs.at(-1)!.cache).toBe('HIT');
  });

  it('stops the answer at a blocked term with finish_reason content_filter, streamed or not', async () => {
    const before = expected.slice(0, expected.indexOf(term));
    const whole = await client(keys.blocking!).chat.completions.create({ model: TEST_MODEL_ID, messages: messages(`hello ${PROMPT_MARKER}`), ...greedy }, { headers: { 'x-aigw-skip-cache': 'true' } });
    expect(whole.choices[0]!.finish_reason).toBe('content_filter');
    expect(whole.choices[0]!.message.content).toBe(before);
    const streamed = await client(keys.blocking!).chat.completions.create(
      { model: TEST_MODEL_ID, messages: messages(`hello ${PROMPT_MARKER}`), stream: true, ...greedy },
      { headers: { 'x-aigw-skip-cache': 'true' } },
    );
    let text = '';
    let finish: string | null = null;
    for await (const chunk of streamed) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect({ text, finish }).toEqual({ text: before, finish: 'content_filter' });
  });

  it('masks a card number in the prompt before the model sees it', async () => {
    await client(keys.logged!).chat.completions.create({ model: TEST_MODEL_ID, messages: messages('my card is 4111 1111 1111 1111 ok'), ...greedy });
    const line = gw.logs.at(-1)!;
    expect(JSON.stringify(line.prompt)).not.toContain('4111');
    expect(line.guardrails).toMatchObject({ input: 'mask', rules: expect.arrayContaining(['cards']) });
  });
});

describe('audit trail', () => {
  it('records every request with its key id, model, tokens, cache and guardrail outcome, and verifies', async () => {
    await audit.flush();
    const today = { since: new Date(Date.now() - 3_600_000), until: new Date(Date.now() + 60_000) };
    const records = await listAudit(gw.store, { ...today, kinds: ['request'] });
    const requestLines = gw.logs.filter((l) => l.message === 'request');
    expect(records.map((r) => r.data.requestId).sort()).toEqual(requestLines.map((l) => l.requestId).sort());
    const blocked = records.find((r) => r.data.status === 400)!;
    expect(blocked.data).toMatchObject({ guardrails: { input: 'block' }, model: TEST_MODEL_ID });
    const masked = records.find((r) => (r.data.guardrails as { output?: string } | undefined)?.output === 'mask')!;
    expect(masked.keyId).toMatch(/^key_/);
    expect(masked.data).toMatchObject({ modelVersion: expect.stringMatching(/@/), completionTokens: expect.any(Number), costMicros: expect.any(Number), status: 200 });
    // A cache hit serves text filtered when it was stored.
    expect(records.some((r) => r.data.cache === 'HIT' && r.data.status === 200)).toBe(true);
    expect((await verifyAudit(gw.store, today)).ok).toBe(true);
  });

  it('never holds an API key, and the prompt only for the key that logs prompts', async () => {
    await audit.flush();
    const items = (await gw.store.client.send(new ScanCommand({ TableName: gw.store.tableName }))).Items ?? [];
    const everything = JSON.stringify(items) + JSON.stringify(gw.logs);
    for (const key of Object.values(keys)) expect(everything).not.toContain(key);
    const records = await listAudit(gw.store, { since: new Date(Date.now() - 3_600_000), until: new Date(Date.now() + 60_000), kinds: ['request'] });
    const withMarker = records.filter((r) => JSON.stringify(r).includes(PROMPT_MARKER));
    expect(withMarker).toEqual([]);
    const loggedKeyRecords = records.filter((r) => r.data.prompt !== undefined);
    expect(loggedKeyRecords.length).toBe(1);
    expect(JSON.stringify(loggedKeyRecords[0]!.data.prompt)).toContain('my card is [redacted]'.replace('[redacted]', '[masked]'));
    const markerLogs = gw.logs.filter((l) => JSON.stringify(l).includes(PROMPT_MARKER));
    expect(markerLogs).toEqual([]);
  });
});
