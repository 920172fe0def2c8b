// functions/gateway.ts as Lambda runs it, from the environment the stack sets: DynamoDB Local for
// the table, a Secrets Manager endpoint for the origin secret, and a model function served on a
// local port behind a SigV4 verifier, so the signed gateway → model function hop is real.
import '../helpers/awslambda-shim.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { functionUrlEvent, invokeStreaming } from '../helpers/awslambda-shim.js';
import { FIXTURE_MODEL_ID as MODEL_ID, startGatewayFunction, type GatewayFunctionFixture } from '../helpers/gateway-function-fixture.js';
import type { VerifiedGateway } from '../helpers/sigv4-verifier.js';
import { createTestStore } from '../setup/store.js';
import { GATEWAY_ENV } from '../../infra/function-env.js';
import { ORIGIN_SECRET_HEADER } from '../../infra/origin-protection.js';
import type { LambdaFunctionURLEvent, StreamingLambdaHandler } from '../../src/adapters/lambda-streaming.js';
import { createApiKey } from '../../src/admission/index.js';

const CURRENT = 'current-origin-secret-0123456789abcdef';
const PREVIOUS = 'previous-origin-secret-0123456789abcdef';

let fixture: GatewayFunctionFixture;
let handler: StreamingLambdaHandler;
let apiKey: string;
let verifier: VerifiedGateway;

beforeAll(async () => {
  const store = await createTestStore('lambda-gateway-fn');
  apiKey = (await createApiKey(store, { name: 'lambda' })).key;
  fixture = await startGatewayFunction({
    tableName: store.tableName,
    originSecret: { AWSCURRENT: CURRENT, AWSPREVIOUS: PREVIOUS },
    // The project's aigw.toml, [deploy] included: the function ignores the CDK app's section.
    config: ['[deploy]', 'regions = ["us-east-1"]', '[monitoring]', 'log_level = "error"', 'metrics = "off"', '[plans.free]', 'requests_per_minute = 100'],
  });
  ({ handler, verifier } = fixture);
});

afterAll(async () => {
  await fixture?.close();
});

function event(name: string, secret?: string): LambdaFunctionURLEvent {
  const loaded = functionUrlEvent(name, { API_KEY: apiKey });
  if (secret !== undefined) loaded.headers[ORIGIN_SECRET_HEADER] = secret;
  return loaded;
}

describe('the gateway function handler', () => {
  it('refuses a request that did not come through CloudFront with 403', async () => {
    const accepted = verifier.accepted();
    for (const secret of [undefined, 'guessed']) {
      const result = await invokeStreaming(handler, event('chat-completion', secret));
      expect(result.prelude?.statusCode).toBe(403);
      expect(JSON.parse(result.body.toString('utf8')).error.code).toBe('origin_forbidden');
    }
    expect(verifier.accepted()).toBe(accepted);
  });

  it('serves a chat completion from the model function over a SigV4-signed call, with the configured plan', async () => {
    const accepted = verifier.accepted();
    const result = await invokeStreaming(handler, event('chat-completion', CURRENT));
    expect(result.error).toBeUndefined();
    expect(result.prelude?.statusCode).toBe(200);
    expect(result.prelude?.headers['x-ratelimit-limit-requests']).toBe('100');
    expect(Number(result.prelude?.headers['x-aigw-cost-usd'])).toBeGreaterThan(0);
    const body = JSON.parse(result.body.toString('utf8'));
    // `model` names the exact version that served (the model function's `name@version`).
    expect(body).toMatchObject({ object: 'chat.completion', model: expect.stringMatching(new RegExp(`^${MODEL_ID}@`)) });
    expect(body.usage.completion_tokens).toBeGreaterThan(0);
    expect(verifier.accepted()).toBe(accepted + 1);
    expect(verifier.refusals).toEqual([]);
  });

  it('relays a stream token by token, with the previous secret during a rotation', async () => {
    const result = await invokeStreaming(handler, event('chat-completion-stream', PREVIOUS));
    expect(result.error).toBeUndefined();
    expect(result.prelude?.statusCode).toBe(200);
    expect(result.prelude?.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    const text = result.body.toString('utf8');
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
    const events = text.split('\n\n').filter((e) => e !== '');
    expect(result.bodyWrites.map((w) => w.toString('utf8'))).toEqual(events.map((e) => `${e}\n\n`));
    expect(events.length).toBeGreaterThan(3);
  });

  it('lets the origin check pass and then asks for an API key', async () => {
    const result = await invokeStreaming(handler, event('chat-completion-no-key', CURRENT));
    expect(result.prelude?.statusCode).toBe(401);
    expect(result.prelude?.headers['x-request-id']).toMatch(/^req_/);
  });
});

describe('the gateway function environment', () => {
  it('names the model function entry that lacks its price or context length', async () => {
    const { readModelFunctions } = await import('../../src/adapters/gateway-function-config.js');
    const env = { [GATEWAY_ENV.modelFunctionUrls]: JSON.stringify([{ name: 'm', version: '1', url: 'https://x.lambda-url.us-east-1.on.aws/' }]) };
    expect(() => readModelFunctions(env)).toThrow(/AIGW_MODEL_FUNCTION_URLS\[0\] \(m@1\).*contextLength/s);
    expect(readModelFunctions({})).toEqual([]);
  });

  it('reads a model\'s cap on requests in flight, which admission counts in DynamoDB', async () => {
    const { readModelFunctions } = await import('../../src/adapters/gateway-function-config.js');
    const entry = { name: 'm', version: '1', url: 'https://x.lambda-url.us-east-1.on.aws/', contextLength: 2048, price: { inputMicrosPerMillionTokens: 0, outputMicrosPerMillionTokens: 0 } };
    expect(readModelFunctions({ [GATEWAY_ENV.modelFunctionUrls]: JSON.stringify([{ ...entry, maxConcurrentRequests: 4 }]) })[0]!.maxConcurrentRequests).toBe(4);
    expect(readModelFunctions({ [GATEWAY_ENV.modelFunctionUrls]: JSON.stringify([entry]) })[0]!.maxConcurrentRequests).toBeUndefined();
    expect(() => readModelFunctions({ [GATEWAY_ENV.modelFunctionUrls]: JSON.stringify([{ ...entry, maxConcurrentRequests: 0 }]) })).toThrow(/maxConcurrentRequests/);
  });

  it('reads aigw.toml settings from AIGW_CONFIG, overridable per key, ignoring the stack-only AIGW_MODEL_* names', async () => {
    const { readGatewayConfig } = await import('../../src/adapters/gateway-function-config.js');
    const config = readGatewayConfig({
      AIGW_CONFIG: '[deploy]\nregions = ["eu-west-1"]\n[cache]\nttl = 60\n[gateway]\nallowed_origins = ["https://app.example.com"]',
      AIGW_CACHE_SHARED: 'true',
      AIGW_MODEL_FUNCTION_URLS: '[]',
      AIGW_MODEL_NAME: 'ignored',
    });
    expect(config.cache).toMatchObject({ ttl: 60, shared: true });
    expect(config.gateway.allowed_origins).toEqual(['https://app.example.com']);
    expect(() => readGatewayConfig({ AIGW_CONFIG: '[cache]\nttl = "soon"' })).toThrow(/cache\.ttl/);
  });
});
