// functions/gateway.ts with AIGW_LIMITS_REGION set, as a secondary region's stack runs it. DynamoDB
// Local keeps one database per region, so two "replicas" of one table are real and distinct: the
// key is read from the local region's, every admission write lands in the limits region's.
import '../helpers/awslambda-shim.js';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { functionUrlEvent, invokeStreaming } from '../helpers/awslambda-shim.js';
import { startGatewayFunction, type GatewayFunctionFixture } from '../helpers/gateway-function-fixture.js';
import { providedDynamoDb, createTestStore } from '../setup/store.js';
import { GATEWAY_ENV } from '../../infra/function-env.js';
import { ORIGIN_SECRET_HEADER } from '../../infra/origin-protection.js';
import type { StreamingLambdaHandler } from '../../src/adapters/lambda-streaming.js';
import { createApiKey } from '../../src/admission/index.js';
import { createDynamoDbClient, ensureTable, itemKeys, tableSchema, type Store } from '../../src/store/index.js';

const SECRET = 'origin-secret-0123456789abcdef0123';

let fixture: GatewayFunctionFixture;
let handler: StreamingLambdaHandler;
let apiKey: string;
let keyId: string;
let local: Store;
let primary: Store;

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

  fixture = await startGatewayFunction({
    tableName: local.tableName,
    originSecret: { AWSCURRENT: SECRET },
    config: ['[monitoring]', 'log_level = "error"', 'metrics = "off"', '[plans.free]', 'requests_per_minute = 100'],
    env: { [GATEWAY_ENV.limitsRegion]: primaryRegion },
  });
  ({ handler } = fixture);
});

afterAll(async () => {
  await fixture?.close();
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
