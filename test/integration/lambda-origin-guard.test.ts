// The origin secret: CloudFront's header is checked before anything else (403 when missing or
// wrong, both rotation stages accepted), and read from Secrets Manager with a short cache.
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { functionUrlEvent, invokeStreaming } from '../helpers/awslambda-shim.js';
import { startSecretsManagerServer, type SecretsManagerServer } from '../helpers/secrets-manager-server.js';
import { streamingHandler } from '../../src/adapters/lambda-streaming.js';
import { withOriginSecret } from '../../src/adapters/origin-guard.js';
import { OriginSecretError, originSecretSource } from '../../src/adapters/origin-secret-source.js';
import type { Gateway } from '../../src/gateway.js';
import { ORIGIN_SECRET_HEADER, ORIGIN_SECRET_NAME } from '../../infra/origin-protection.js';

const CURRENT = 'c'.repeat(64);
const PREVIOUS = 'p'.repeat(64);

/** What reached the gateway behind the guard. */
const seen: { secretHeader: string | null; body: string; aborted: boolean }[] = [];
const inner: Gateway = async (request) => {
  seen.push({ secretHeader: request.headers.get(ORIGIN_SECRET_HEADER), body: await request.text(), aborted: request.signal.aborted });
  return Response.json({ ok: true }, { headers: { 'x-request-id': 'req_inner' } });
};
const guarded = withOriginSecret(inner, async () => [CURRENT, PREVIOUS]);

const post = (headers: Record<string, string>) =>
  new Request('https://gw.example/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"hello":1}' });

describe('withOriginSecret', () => {
  it('refuses a request without the header with 403 in OpenAI error shape, before the gateway runs', async () => {
    const before = seen.length;
    const response = await guarded(post({}));
    expect(response.status).toBe(403);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await response.json()).toEqual({
      error: { message: expect.stringContaining('function URL'), type: 'invalid_request_error', param: null, code: 'origin_forbidden' },
    });
    expect(seen.length).toBe(before);
  });

  it('refuses a wrong secret, also one that is a prefix of the right one', async () => {
    for (const wrong of ['nope', CURRENT.slice(0, 63), `${CURRENT}x`, '']) {
      const response = await guarded(post({ [ORIGIN_SECRET_HEADER]: wrong }));
      expect(response.status, wrong).toBe(403);
    }
  });

  it('lets the current and the previous secret through, without the header, body intact', async () => {
    for (const secret of [CURRENT, PREVIOUS]) {
      const before = seen.length;
      const response = await guarded(post({ [ORIGIN_SECRET_HEADER]: secret }));
      expect(response.status).toBe(200);
      expect(response.headers.get('x-request-id')).toBe('req_inner');
      expect(seen.slice(before)).toEqual([{ secretHeader: null, body: '{"hello":1}', aborted: false }]);
    }
  });

  it('keeps the request signal: aborting the original aborts what the gateway sees', async () => {
    let innerSignal: AbortSignal | undefined;
    const guard = withOriginSecret(async (request) => {
      innerSignal = request.signal;
      return new Response('ok');
    }, async () => [CURRENT]);
    const controller = new AbortController();
    await guard(new Request('https://gw.example/healthz', { headers: { [ORIGIN_SECRET_HEADER]: CURRENT }, signal: controller.signal }));
    controller.abort();
    expect(innerSignal?.aborted).toBe(true);
  });

  it('answers 503 when the secret cannot be read, and logs why', async () => {
    const lines: Record<string, unknown>[] = [];
    const guard = withOriginSecret(inner, () => Promise.reject(new OriginSecretError('cannot read secret')), {
      info: (message, ...extra) => lines.push(Object.assign({ message }, ...extra)),
    });
    const response = await guard(post({ [ORIGIN_SECRET_HEADER]: CURRENT }));
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('1');
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('origin_check_unavailable');
    expect(lines).toEqual([{ message: 'origin secret unavailable', error: 'OriginSecretError: cannot read secret' }]);
  });

  it('works through the streaming handler with a function-URL event', async () => {
    const handler = streamingHandler(guarded);
    const ok = await invokeStreaming(handler, functionUrlEvent('models-list', { API_KEY: 'k', ORIGIN_SECRET: PREVIOUS }));
    expect(ok.prelude?.statusCode).toBe(200);
    const refused = await invokeStreaming(handler, functionUrlEvent('models-list', { API_KEY: 'k', ORIGIN_SECRET: 'guessed' }));
    expect(refused.prelude?.statusCode).toBe(403);
    expect(JSON.parse(refused.body.toString('utf8')).error.code).toBe('origin_forbidden');
  });
});

describe('originSecretSource (Secrets Manager)', () => {
  let server: SecretsManagerServer;
  let client: SecretsManagerClient;

  beforeAll(async () => {
    server = await startSecretsManagerServer();
    client = new SecretsManagerClient({
      endpoint: server.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 1,
    });
  });

  afterAll(async () => {
    client?.destroy();
    await server?.stop();
  });

  it('reads AWSCURRENT and AWSPREVIOUS once, shared by concurrent callers, and keeps them for the TTL', async () => {
    const secretId = 'rotated';
    server.setSecret(secretId, { AWSCURRENT: CURRENT, AWSPREVIOUS: PREVIOUS });
    let clock = 1_000;
    const secrets = originSecretSource({ client, secretId, ttlMs: 300_000, now: () => clock });
    const reads = await Promise.all([secrets(), secrets(), secrets()]);
    for (const values of reads) expect(values).toEqual([CURRENT, PREVIOUS]);
    const mine = () => server.calls.filter((call) => call.secretId === secretId);
    expect(mine().map((call) => call.stage)).toEqual(['AWSCURRENT', 'AWSPREVIOUS']);

    clock += 299_999;
    await secrets();
    expect(mine().length).toBe(2);

    // A rotation is seen once the cache has expired.
    server.setSecret(secretId, { AWSCURRENT: 'n'.repeat(64), AWSPREVIOUS: CURRENT });
    clock += 1;
    expect(await secrets()).toEqual(['n'.repeat(64), CURRENT]);
    expect(mine().length).toBe(4);
  });

  it('accepts the current value alone before the first rotation', async () => {
    server.setSecret(ORIGIN_SECRET_NAME, { AWSCURRENT: CURRENT });
    expect(await originSecretSource({ client, secretId: ORIGIN_SECRET_NAME })()).toEqual([CURRENT]);
  });

  it('keeps the last values while Secrets Manager fails, and fails without any', async () => {
    const secretId = 'flaky';
    server.setSecret(secretId, { AWSCURRENT: CURRENT });
    let clock = 0;
    const secrets = originSecretSource({ client, secretId, ttlMs: 1_000, now: () => clock });
    expect(await secrets()).toEqual([CURRENT]);
    server.failing = true;
    try {
      clock += 5_000;
      expect(await secrets()).toEqual([CURRENT]);
      const fresh = originSecretSource({ client, secretId, now: () => clock });
      await expect(fresh()).rejects.toBeInstanceOf(OriginSecretError);
    } finally {
      server.failing = false;
    }
  });

  it('fails for a secret that does not exist', async () => {
    await expect(originSecretSource({ client, secretId: 'missing' })()).rejects.toThrow(/cannot read secret missing/);
  });
});
