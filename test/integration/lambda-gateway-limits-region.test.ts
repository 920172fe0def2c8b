// functions/gateway.ts with AIGW_LIMITS_REGION set, as a secondary region's stack runs it. DynamoDB
// Local keeps one database per region, so two "replicas" of one table are real and distinct: the
// key is read from the local region's, every admission write lands in the limits region's.
import '../helpers/awslambda-shim.js';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { functionUrlEvent, invokeStreaming } from '../helpers/awslambda-shim.js';
import { startSecretsManagerServer, type SecretsManagerServer } from '../helpers/secrets-manager-server.js';
import { sigv4Verifier } from '../helpers/sigv4-verifier.js';
import { ensureTestModel } from '../helpers/test-models.js';
import { providedDynamoDb, createTestStore } from '../setup/store.js';
import { GATEWAY_ENV } from '../../infra/function-env.js';
import { ORIGIN_SECRET_HEADER, ORIGIN_SECRET_NAME } from '../../infra/origin-protection.js';
import type { StreamingLambdaHandler } from '../../src/adapters/lambda-streaming.js';
import { serveNode, type NodeServer } from '../../src/adapters/node-server.js';
import { createApiKey } from '../../src/admission/index.js';
import { engineBackend } from '../../src/backends/engine-backend.js';
import { loadModel } from '../../src/engine/index.js';
import { createGateway } from '../../src/gateway.js';
import { createDynamoDbClient, ensureTable, itemKeys, tableSchema, type Store } from '../../src/store/index.js';

const MODEL_ID = 'aigw-demo';
const SECRET = 'origin-secret-0123456789abcdef0123';

let handler: StreamingLambdaHandler;
let apiKey: string;
let keyId: string;
let local: Store;
let primary: Store;
let secrets: SecretsManagerServer;
let modelFunction: NodeServer;

async function partitionKeys(store: Store): Promise<string[]> {
  const out = await store.client.send(new ScanCommand({ TableName: store.tableName, ConsistentRead: true }));
  return (out.Items ?? []).map((item) => String(item.pk));
}

beforeAll(async () => {
  const dynamo = providedDynamoDb();
  local = await createTestStore('lambda-limits-region');
  // The primary region's replica: the same table name, another region on the same endpoint.
  const primaryRegion = dynamo.region === 'eu-west-1' ? 'us-west-2' : 'eu-west-1';
  primary = {
    client: createDynamoDbClient({ endpoint: dynamo.endpoint, region: primaryRegion, credentials: dynamo.credentials }),
    tableName: local.tableName,
  };
  await ensureTable(primary.client, tableSchema(local.tableName));
  const created = await createApiKey(local, { name: 'secondary-region' });
  apiKey = created.key;
  keyId = created.record.keyId;

  const model = await loadModel(await ensureTestModel({ layout: 'optimum', precision: 'int4' }), { threads: 1 });
  const core = createGateway({
    backends: new Map([[MODEL_ID, engineBackend(model, MODEL_ID)]]),
    defaultModel: MODEL_ID,
    logger: { info: () => undefined },
    maxRequestBytes: 1024 * 1024,
    logPrompts: false,
  });
  const verifier = sigv4Verifier(core, { credentials: dynamo.credentials, region: dynamo.region, service: 'lambda' });
  modelFunction = await serveNode(verifier.gateway, { host: '127.0.0.1', port: 0 });
  secrets = await startSecretsManagerServer();
  secrets.setSecret(ORIGIN_SECRET_NAME, { AWSCURRENT: SECRET });

  Object.assign(process.env, {
    AWS_REGION: dynamo.region,
    AWS_ACCESS_KEY_ID: dynamo.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: dynamo.credentials.secretAccessKey,
    AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.endpoint,
    [GATEWAY_ENV.tableName]: local.tableName,
    [GATEWAY_ENV.originSecretId]: ORIGIN_SECRET_NAME,
    [GATEWAY_ENV.limitsRegion]: primaryRegion,
    [GATEWAY_ENV.modelFunctionUrls]: JSON.stringify([
      {
        name: MODEL_ID,
        version: '3',
        url: modelFunction.url,
        contextLength: 2048,
        price: { inputMicrosPerMillionTokens: 100_000, outputMicrosPerMillionTokens: 400_000 },
      },
    ]),
    AIGW_CONFIG: ['[monitoring]', 'log_level = "error"', 'metrics = "off"', '[plans.free]', 'requests_per_minute = 100'].join('\n'),
  });
  ({ handler } = await import('../../functions/gateway.js'));
});

afterAll(async () => {
  delete process.env[GATEWAY_ENV.limitsRegion];
  await modelFunction?.close(0);
  await secrets?.stop();
});

describe('a secondary region gateway with limits in the primary region', () => {
  it('authenticates from the local replica and counts the request in the primary one only', async () => {
    const loaded = functionUrlEvent('chat-completion', { API_KEY: apiKey });
    loaded.headers[ORIGIN_SECRET_HEADER] = SECRET;
    const result = await invokeStreaming(handler, loaded);
    expect(result.error).toBeUndefined();
    expect(result.prelude?.statusCode).toBe(200);
    expect(result.prelude?.headers['x-ratelimit-remaining-requests']).toBe('99');

    const limitsPk = itemKeys.keyLimits(keyId).pk;
    const inPrimary = await partitionKeys(primary);
    const inLocal = await partitionKeys(local);
    expect(inPrimary).toContain(limitsPk);
    expect(inLocal).not.toContain(limitsPk);
    // The key itself lives only in the local replica: the primary never served the lookup.
    expect(inPrimary.some((pk) => pk.startsWith('KEY#'))).toBe(false);
    expect(inLocal.some((pk) => pk.startsWith('KEY#'))).toBe(true);
  });
});
