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
