// Lambda entry point of a model function (one per model deployment, behind an AWS_IAM function
// URL): the model package from S3, loaded once per container, served as an OpenAI-compatible API.
import { Logger } from '@aws-lambda-powertools/logger';
import { MODEL_CACHE_DIR, MODEL_ENV } from '../infra/function-env.js';
import { MODEL_SERVICE_NAME } from '../src/telemetry/metric-names.js';
import { streamingHandler } from '../src/adapters/lambda-streaming.js';
import { modelFunctionGateway } from '../src/adapters/model-function.js';
import { createModelStoreClient } from '../src/models/index.js';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: the model function's stack sets it`);
  return value;
}

const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? MODEL_SERVICE_NAME });

export const handler = streamingHandler(
  modelFunctionGateway({
    s3: createModelStoreClient({ region: process.env.AWS_REGION }),
    bucket: required(MODEL_ENV.bucket),
    name: required(MODEL_ENV.name),
    version: required(MODEL_ENV.version),
    cacheDir: process.env[MODEL_ENV.cacheDir] ?? MODEL_CACHE_DIR,
    logger,
  }),
);
