// What functions/gateway.ts needs around it to run as Lambda runs it: a model function (the
// keyless gateway core on a local port behind a SigV4 verifier), a Secrets Manager endpoint with
// the origin secret, and the environment the stack sets. DynamoDB is the run's DynamoDB Local.
import '../helpers/awslambda-shim.js';
import { GATEWAY_ENV } from '../../infra/function-env.js';
import { ORIGIN_SECRET_NAME } from '../../infra/origin-protection.js';
import type { StreamingLambdaHandler } from '../../src/adapters/lambda-streaming.js';
import { serveNode } from '../../src/adapters/node-server.js';
import { engineBackend } from '../../src/backends/engine-backend.js';
import { loadModel } from '../../src/engine/index.js';
import { createGateway } from '../../src/gateway.js';
import { providedDynamoDb } from '../setup/store.js';
import { startSecretsManagerServer } from './secrets-manager-server.js';
import { sigv4Verifier, type VerifiedGateway } from './sigv4-verifier.js';
import { ensureTestModel } from './test-models.js';

export const FIXTURE_MODEL_ID = 'aigw-demo';

export interface GatewayFunctionFixture {
  handler: StreamingLambdaHandler;
  verifier: VerifiedGateway;
  close(): Promise<void>;
}

export async function startGatewayFunction(options: {
  tableName: string;
  /** The origin secret's version stages. */
  originSecret: { AWSCURRENT: string; AWSPREVIOUS?: string };
  /** aigw.toml lines given to the function as AIGW_CONFIG. */
  config: string[];
  /** More of the stack's variables (e.g. AIGW_LIMITS_REGION). */
  env?: Record<string, string>;
}): Promise<GatewayFunctionFixture> {
  const dynamo = providedDynamoDb();
  const model = await loadModel(await ensureTestModel({ layout: 'optimum', precision: 'int4' }), { threads: 1 });
  const core = createGateway({
    backends: new Map([[FIXTURE_MODEL_ID, engineBackend(model, FIXTURE_MODEL_ID)]]),
    defaultModel: FIXTURE_MODEL_ID,
    logger: { info: () => undefined },
    maxRequestBytes: 1024 * 1024,
    logPrompts: false,
  });
  // The role credentials the gateway signs with are the ones AWS_IAM auth checks.
  const verifier = sigv4Verifier(core, { credentials: dynamo.credentials, region: dynamo.region, service: 'lambda' });
  const modelFunction = await serveNode(verifier.gateway, { host: '127.0.0.1', port: 0 });
  const secrets = await startSecretsManagerServer();
  secrets.setSecret(ORIGIN_SECRET_NAME, options.originSecret);

  const env: Record<string, string> = {
    AWS_REGION: dynamo.region,
    AWS_ACCESS_KEY_ID: dynamo.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: dynamo.credentials.secretAccessKey,
    AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.endpoint,
    [GATEWAY_ENV.tableName]: options.tableName,
    [GATEWAY_ENV.originSecretId]: ORIGIN_SECRET_NAME,
    [GATEWAY_ENV.modelFunctionUrls]: JSON.stringify([
      {
        name: FIXTURE_MODEL_ID,
        version: '3',
        url: modelFunction.url,
        contextLength: 2048,
        price: { inputMicrosPerMillionTokens: 100_000, outputMicrosPerMillionTokens: 400_000 },
      },
    ]),
    AIGW_CONFIG: options.config.join('\n'),
    ...options.env,
  };
  Object.assign(process.env, env);
  const { handler } = await import('../../functions/gateway.js');
  return {
    handler,
    verifier,
    async close() {
      for (const name of Object.keys(options.env ?? {})) delete process.env[name];
      await modelFunction.close(0);
      await secrets.stop();
    },
  };
}
