// functions/model.ts as Lambda runs it: its environment, the runtime shim, S3 = s3rver. A missing
// package answers 503 and the next invocation retries; once pushed, the model serves completions.
import '../helpers/awslambda-shim.js';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { functionUrlEvent, invokeStreaming } from '../helpers/awslambda-shim.js';
import { ensureTestModel } from '../helpers/test-models.js';
import { S3RVER_CREDENTIALS, startS3rver, type S3rverHandle } from '../setup/s3rver.js';
import { MODEL_ENV } from '../../infra/function-env.js';
import type { StreamingLambdaHandler } from '../../src/adapters/lambda-streaming.js';
import { modelFunctionGateway } from '../../src/adapters/model-function.js';
import { pushModelPackage, readManifest, writeManifest } from '../../src/models/index.js';

const NAME = 'aigw-demo';
const VERSION = '3';

let server: S3rverHandle;
let scratch: string;
let packageDir: string;
let handler: StreamingLambdaHandler;

beforeAll(async () => {
  server = await startS3rver();
  scratch = await mkdtemp(path.join(tmpdir(), 'aigw-model-function-'));
  // The test package under the name the fixtures ask for.
  packageDir = path.join(scratch, 'package');
  const built = await ensureTestModel({ layout: 'optimum', precision: 'int4' });
  await cp(built, packageDir, { recursive: true });
  await writeManifest(packageDir, { ...(await readManifest(packageDir)), name: NAME, version: VERSION });

  // What the regional stack sets, and what the SDK reads to reach s3rver instead of S3.
  Object.assign(process.env, {
    [MODEL_ENV.bucket]: server.bucket,
    [MODEL_ENV.name]: NAME,
    [MODEL_ENV.version]: VERSION,
    [MODEL_ENV.cacheDir]: path.join(scratch, 'tmp', 'aigw-models'),
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL_S3: server.endpoint,
    AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
    POWERTOOLS_LOG_LEVEL: 'CRITICAL',
  });
  ({ handler } = await import('../../functions/model.js'));
});

afterAll(async () => {
  await server?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('the model function handler', () => {
  it('answers 503 in OpenAI error shape while the package is missing, saying where it was looked for', async () => {
    const result = await invokeStreaming(handler, functionUrlEvent('chat-completion', { API_KEY: 'unused' }));
    expect(result.error).toBeUndefined();
    expect(result.prelude?.statusCode).toBe(503);
    expect(result.prelude?.headers['retry-after']).toBe('5');
    expect(JSON.parse(result.body.toString('utf8'))).toEqual({
      error: {
        message: `model ${NAME} version ${VERSION} is not in s3://${server.bucket}/models/${NAME}/${VERSION}/; push it with \`aigw models push\``,
        type: 'server_error',
        param: null,
        code: 'model_not_pushed',
      },
    });
  });

  it('tells a store outage apart from a missing package: a bucket that is not there is not "push it"', async () => {
    const gateway = modelFunctionGateway({
      s3: server.client(),
      bucket: 'no-such-bucket',
      name: NAME,
      version: VERSION,
      cacheDir: path.join(scratch, 'tmp', 'outage'),
      logger: { info: () => undefined, error: () => undefined },
    });
    const response = await gateway(new Request('http://model/v1/chat/completions', { method: 'POST', body: '{}' }));
    expect(response.status).toBe(503);
    expect(((await response.json()) as { error: unknown }).error).toMatchObject({ code: 'model_unavailable', message: 'The model is currently unavailable. Please try again later.' });
  });

  it('asks the store again on every invocation while it fails: no cached failure', async () => {
    const manifestGets = () => server.requests.filter((r) => r.method === 'GET' && r.key.endsWith(`${NAME}/${VERSION}/manifest.json`)).length;
    const before = manifestGets();
    await invokeStreaming(handler, functionUrlEvent('chat-completion', { API_KEY: 'unused' }));
    expect(manifestGets()).toBe(before + 1);
  });

  it('recovers once the package is pushed: a chat completion, without keys', async () => {
    await pushModelPackage({ s3: server.client(), bucket: server.bucket, folder: packageDir, name: NAME, version: VERSION });
    const result = await invokeStreaming(handler, functionUrlEvent('chat-completion-no-key'));
    expect(result.error).toBeUndefined();
    expect(result.prelude?.statusCode).toBe(200);
    expect(result.prelude?.headers['x-request-id']).toMatch(/^req_/);
    const body = JSON.parse(result.body.toString('utf8'));
    // `model` names the exact version that served.
    expect(body).toMatchObject({ object: 'chat.completion', model: `${NAME}@${VERSION}`, choices: [{ message: { role: 'assistant' } }] });
    expect(body.usage.completion_tokens).toBeGreaterThan(0);
  });

  it('streams from the model loaded once: no more store requests on a warm invocation', async () => {
    const before = server.requests.length;
    const result = await invokeStreaming(handler, functionUrlEvent('chat-completion-stream', { API_KEY: 'unused' }));
    expect(result.prelude?.statusCode).toBe(200);
    expect(result.prelude?.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(result.body.toString('utf8').endsWith('data: [DONE]\n\n')).toBe(true);
    expect(result.bodyWrites.length).toBeGreaterThan(3);
    expect(server.requests.length).toBe(before);
  });
});
