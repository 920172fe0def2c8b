// `aigw keys create|list|revoke` as an operator runs them, against the run's DynamoDB Local.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, expect, it } from 'vitest';
import { authenticateApiKey, listApiKeys } from '../../src/admission/index.js';
import type { Store } from '../../src/store/index.js';
import { providedDynamoDb, createTestStore } from '../setup/store.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let store: Store;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  store = await createTestStore('keys-cli');
  const { endpoint, credentials } = providedDynamoDb();
  env = {
    ...process.env,
    AIGW_DYNAMODB_ENDPOINT: endpoint,
    AIGW_DYNAMODB_TABLE: store.tableName,
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
  };
});

function aigw(...args: string[]) {
  return promisify(execFile)(process.execPath, [path.join(ROOT, 'bin/aigw.mjs'), ...args], { env, cwd: ROOT });
}

it('creates a key with limit overrides and origins, lists it without the key, and revokes it', async () => {
  const { stdout } = await aigw('keys', 'create', '--name', 'ops', '--plan', 'free', '--limit', 'requests_per_minute=5', '--limit', 'budget_usd_per_day=2.5', '--origins', 'https://app.example.com');
  const key = stdout.trim();
  expect(key).toMatch(/^aigw-[A-Za-z0-9]{40}$/);
  const record = await authenticateApiKey(store, key);
  expect(record).toMatchObject({ name: 'ops', limits: { requestsPerMinute: 5, budgetMicrosPerDay: 2_500_000 }, allowedOrigins: ['https://app.example.com'] });

  const list = await aigw('keys', 'list');
  expect(list.stdout).toContain(record!.keyId);
  expect(list.stdout).not.toContain(key);

  await aigw('keys', 'revoke', record!.keyId);
  expect((await listApiKeys(store)).find((k) => k.keyId === record!.keyId)?.status).toBe('revoked');
});

it('refuses a malformed limit, naming it', async () => {
  const error = await aigw('keys', 'create', '--name', 'bad', '--limit', 'requests_per_minute=lots').catch((e) => e);
  expect(error.code).toBe(1);
  expect(error.stderr).toMatch(/requests_per_minute/);
});

it('audits key changes (create, update, revoke), lists them by key and kind, and verify passes then catches an edit', async () => {
  const { stdout } = await aigw('keys', 'create', '--name', 'audited', '--guardrails', 'pii');
  const key = stdout.trim();
  const keyId = (await authenticateApiKey(store, key))!.keyId;
  await aigw('keys', 'update', keyId, '--limit', 'requests_per_minute=7', '--origins', 'https://a.example.com', '--log-prompts');
  await aigw('keys', 'revoke', keyId);
  const listed = (await aigw('audit', 'list', '--key', keyId)).stdout.trim().split('\n').map((line) => JSON.parse(line));
  expect(listed.map((r) => r.kind)).toEqual(['key_created', 'key_limits_changed', 'key_origins_changed', 'key_settings_changed', 'key_revoked']);
  expect(listed[1].data).toEqual({ before: {}, after: { requestsPerMinute: 7 } });
  expect(listed[3].data.after).toEqual({ guardrails: ['pii'], logPrompts: true });
  expect(JSON.stringify(listed)).not.toContain(key);
  const revoked = (await aigw('audit', 'list', '--kind', 'key_revoked', '--key', keyId)).stdout.trim().split('\n');
  expect(revoked).toHaveLength(1);

  expect((await aigw('audit', 'verify')).stdout).toContain('audit trail intact');
  // Change one record's body in place: verify must fail and name it.
  const { auditKeys } = await import('../../src/audit/index.js');
  const { GetCommand, PutCommand } = await import('@aws-sdk/lib-dynamodb');
  const first = listed[0];
  const item = (await store.client.send(new GetCommand({ TableName: store.tableName, Key: auditKeys.record(first.stream, first.seq) }))).Item!;
  await store.client.send(new PutCommand({ TableName: store.tableName, Item: { ...item, body: JSON.stringify({ ...first, actor: 'someone else' }) } }));
  const error = await aigw('audit', 'verify').catch((e) => e);
  expect(error.code).toBe(1);
  expect(error.stdout).toMatch(new RegExp(`changed at seq ${first.seq}`));
});
