// `aigw deploy check` against a Lambda endpoint speaking the real REST API, through the real
// @aws-sdk/client-lambda: reservations that can't fit the account's concurrency quota are refused
// before anything is deployed, with the quota to raise named.
import { LambdaClient } from '@aws-sdk/client-lambda';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { checkReservedConcurrency, CONCURRENCY_QUOTA, LAMBDA_MIN_UNRESERVED } from '../../infra/concurrency-quota.js';
import { deployConfigFrom } from '../../infra/deploy-config.js';
import { regionalStackName } from '../../infra/stack-names.js';
import { startLambdaAccountServer, type LambdaAccountServer } from '../helpers/lambda-account-server.js';

const CREDENTIALS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const PRICING = { context_length: 2048, input_usd_per_million_tokens: '0', output_usd_per_million_tokens: '0' };
const repositoryRoot = path.resolve(import.meta.dirname, '../..');

let server: LambdaAccountServer;
const clients: LambdaClient[] = [];

beforeAll(async () => {
  server = await startLambdaAccountServer();
});
afterAll(async () => {
  for (const client of clients) client.destroy();
  await server?.stop();
});
beforeEach(() => {
  server.regions.clear();
  server.requests.length = 0;
});

function check(deploy: Record<string, unknown>) {
  return checkReservedConcurrency({
    config: deployConfigFrom(deploy),
    stackName: regionalStackName,
    lambdaClient: (region) => {
      const client = new LambdaClient({ region, endpoint: server.endpoint, credentials: CREDENTIALS, maxAttempts: 1 });
      clients.push(client);
      return client;
    },
  });
}

describe('deploy check on a new account (quota 10)', () => {
  it('passes the default config: nothing reserved, so nothing to fit', async () => {
    server.regions.set('us-east-1', { limit: 10 });
    const [verdict] = await check({ models: [{ name: 'tiny', version: '1', ...PRICING }] });
    expect(verdict).toMatchObject({ region: 'us-east-1', fits: true, needed: 0 });
    expect(verdict!.message).toContain('quota is 10');
    // Only the quota was read: with nothing reserved there are no functions to look at.
    expect(server.requests).toEqual([{ method: 'GET', path: expect.stringMatching(/^\/2016-08-19\/account-settings\/?$/), region: 'us-east-1' }]);
  });

  it('refuses any reservation, naming the Service Quotas quota and the value to ask for', async () => {
    server.regions.set('us-east-1', { limit: 10 });
    const [verdict] = await check({ models: [{ name: 'tiny', version: '1', reserved_concurrency: 2, ...PRICING }] });
    expect(verdict).toMatchObject({ fits: false, needed: 2, available: 0 });
    expect(verdict!.message).toContain(`"${CONCURRENCY_QUOTA.name}"`);
    expect(verdict!.message).toContain(`code ${CONCURRENCY_QUOTA.code}`);
    expect(verdict!.message).toContain('model tiny@1 2');
    expect(verdict!.message).toContain(`Lambda keeps ${LAMBDA_MIN_UNRESERVED} unreserved`);
    // 2 reserved + 100 kept unreserved.
    expect(verdict!.message).toContain('in us-east-1 to at least 102');
  });
});

describe('deploy check on a raised quota', () => {
  it('fits the gateway and model reservations beside other functions\' reservations', async () => {
    server.regions.set('eu-west-1', { limit: 1000, functions: { 'billing-worker': 300, 'Aigw-eu-west-1-Other': undefined } });
    const [verdict] = await check({
      regions: ['eu-west-1'],
      gateway_reserved_concurrency: 50,
      models: [{ name: 'llama', version: '3', reserved_concurrency: 20, ...PRICING }],
    });
    expect(verdict).toMatchObject({ fits: true, needed: 70, available: 600 });
  });

  it('refuses one reservation too many, exactly at the boundary', async () => {
    server.regions.set('eu-west-1', { limit: 1000, functions: { 'billing-worker': 830 } });
    const deploy = (gateway: number) => ({ regions: ['eu-west-1'], gateway_reserved_concurrency: gateway });
    expect((await check(deploy(70)))[0]).toMatchObject({ fits: true, available: 70 });
    const [refused] = await check(deploy(71));
    expect(refused).toMatchObject({ fits: false, available: 70 });
    expect(refused!.message).toContain('to at least 1001');
  });

  it('counts what aigw\'s own deployed functions reserve as free for their update (across list pages)', async () => {
    // A redeploy: the regional stack's functions hold 100 + 50 already; Lambda frees them as it updates.
    server.regions.set('eu-west-1', {
      limit: 300,
      functions: {
        'other-a': undefined,
        'other-b': 10,
        'Aigw-eu-west-1-Gateway43CB3636-AbCdEf123456': 100,
        'Aigw-eu-west-1-Modelllama314187E8-ZyXwVu987654': 50,
        'Aigw-eu-west-10-NotOurs': 5,
      },
    });
    const [verdict] = await check({
      regions: ['eu-west-1'],
      gateway_reserved_concurrency: 100,
      models: [{ name: 'llama', version: '3', reserved_concurrency: 85, ...PRICING }],
    });
    // 300 - 10 - 5 (others) - 100 kept = 185 for aigw.
    expect(verdict).toMatchObject({ fits: true, needed: 185, available: 185 });
    const concurrencyReads = server.requests.filter((request) => request.path.endsWith('/concurrency')).map((request) => request.path);
    expect(concurrencyReads.sort()).toEqual([
      '/2019-09-30/functions/Aigw-eu-west-1-Gateway43CB3636-AbCdEf123456/concurrency',
      '/2019-09-30/functions/Aigw-eu-west-1-Modelllama314187E8-ZyXwVu987654/concurrency',
    ]);
    expect(server.requests.filter((request) => request.path.startsWith('/2015-03-31/functions')).length).toBe(3);
  });

  it('checks every region with its own quota, signing each call for that region', async () => {
    server.regions.set('eu-west-1', { limit: 1000 });
    server.regions.set('ap-northeast-1', { limit: 10 });
    const verdicts = await check({ regions: ['eu-west-1', 'ap-northeast-1'], gateway_reserved_concurrency: 5 });
    expect(verdicts.map((verdict) => [verdict.region, verdict.fits])).toEqual([
      ['eu-west-1', true],
      ['ap-northeast-1', false],
    ]);
    expect(new Set(server.requests.map((request) => request.region))).toEqual(new Set(['eu-west-1', 'ap-northeast-1']));
  });

  it('fails loudly when the Lambda API refuses (no credentials for a region): no silent pass', async () => {
    await expect(check({ regions: ['sa-east-1'], gateway_reserved_concurrency: 1 })).rejects.toThrow(/no account set up for region "sa-east-1"/);
  });
});

describe('aigw deploy check (the command npm run deploy runs first)', () => {
  let scratch: string;
  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'aigw-deploy-check-'));
  });
  afterAll(async () => {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  async function runCheck(toml: string): Promise<{ code: number | null; stderr: string }> {
    const file = path.join(scratch, `aigw-${crypto.randomUUID()}.toml`);
    await writeFile(file, toml);
    const child = spawn(process.execPath, [path.join(repositoryRoot, 'bin/aigw.mjs'), '-c', file, 'deploy', 'check'], {
      cwd: scratch,
      env: {
        PATH: process.env.PATH,
        HOME: scratch,
        AWS_ENDPOINT_URL_LAMBDA: server.endpoint,
        AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    // Node 20 gets the SDK's end-of-support notice on stderr; the test reads aigw's own lines.
    return { code, stderr: stderr.split('\n').filter((line) => !/NodeVersionSupport|node --trace-warnings/.test(line)).join('\n') };
  }

  it('exits 1 with the quota to raise when a reservation can\'t fit', async () => {
    server.regions.set('eu-west-1', { limit: 10 });
    const result = await runCheck(
      '[deploy]\nregions = ["eu-west-1"]\nrequire_tls12 = false\n\n[[deploy.models]]\nname = "tiny"\nversion = "1"\nreserved_concurrency = 4\n' +
        'context_length = 2048\ninput_usd_per_million_tokens = "0"\noutput_usd_per_million_tokens = "0"\n',
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('aigw: eu-west-1: [deploy] reserves 4 concurrent executions');
    expect(result.stderr).toContain('"Concurrent executions" (AWS Lambda, code L-B99A9384) in eu-west-1 to at least 104');
  });

  it('exits 0 and says so when everything fits', async () => {
    server.regions.set('eu-west-1', { limit: 10 });
    const result = await runCheck('[deploy]\nregions = ["eu-west-1"]\n');
    expect(result.stderr).toContain('concurrency ok: eu-west-1: nothing reserved');
    expect(result.code).toBe(0);
  });
});
