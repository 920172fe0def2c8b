// What a model function serves: its model package fetched from S3 into /tmp and loaded into
// onnxruntime once per container, behind the same gateway with keys, admission and cache off.
import type { S3Client } from '@aws-sdk/client-s3';
import { ApiError, errorResponse } from '../api/errors.js';
import { engineBackend } from '../backends/engine-backend.js';
import { loadModel } from '../engine/index.js';
import { createGateway, type Gateway } from '../gateway.js';
import { fetchModelPackage, modelPackagePrefix, ModelStoreError } from '../models/index.js';
import type { RequestLogger } from '../telemetry/index.js';

/** Function URLs take at most 6 MB; the gateway in front already enforced its own, smaller limit. */
const MODEL_FUNCTION_MAX_REQUEST_BYTES = 6 * 1024 * 1024;

export interface ModelFunctionLogger extends RequestLogger {
  error(message: string, ...extra: Record<string, unknown>[]): void;
}

export interface ModelFunctionOptions {
  s3: S3Client;
  bucket: string;
  /** The model's name: also the model id requests name. */
  name: string;
  version: string;
  /** Where the package is kept across warm invocations, e.g. /tmp/aigw-models. */
  cacheDir: string;
  logger: ModelFunctionLogger;
  /** onnxruntime intra-op threads; default every core the function has. */
  threads?: number;
}

/**
 * The model function's gateway. Loading starts at once (a cold start's init phase) and is shared
 * by the requests that arrive meanwhile. A failed load (package missing or corrupt, store down)
 * answers 503 and is dropped, so the next invocation tries again instead of the container
 * failing every request, or crashing, until it is recycled.
 */
export function modelFunctionGateway(options: ModelFunctionOptions): Gateway {
  let ready: Promise<Gateway> | undefined;
  const start = (): Promise<Gateway> => {
    const loading: Promise<Gateway> = load(options).catch((error: unknown) => {
      if (ready === loading) ready = undefined;
      options.logger.error('model load failed', { model: `${options.name}@${options.version}`, error: describe(error) });
      throw error;
    });
    // Reported to the requests that await it; never an unhandled rejection, which would end the process.
    loading.catch(() => undefined);
    return loading;
  };
  ready = start();

  return async (request, runtime) => {
    let gateway: Gateway;
    try {
      gateway = await (ready ??= start());
    } catch (error) {
      return errorResponse(loadFailure(error, options));
    }
    return gateway(request, runtime);
  };
}

async function load(options: ModelFunctionOptions): Promise<Gateway> {
  const { s3, bucket, name, version, cacheDir } = options;
  const dir = await fetchModelPackage({ s3, bucket, name, version, cacheDir });
  const model = await loadModel(dir, { threads: options.threads });
  return createGateway({
    // One request at a time reaches a Lambda execution environment: no batching to do.
    backends: new Map([[name, engineBackend(model, name, { batchSize: 1 })]]),
    defaultModel: name,
    logger: options.logger,
    maxRequestBytes: MODEL_FUNCTION_MAX_REQUEST_BYTES,
    logPrompts: false,
  });
}

/**
 * A package that was never pushed says so, with where it was looked for (the role's s3:ListBucket
 * on the prefix makes S3 answer 404 rather than 403 for it); anything else is an outage.
 */
function loadFailure(error: unknown, options: ModelFunctionOptions): ApiError {
  const headers = { 'retry-after': '5' };
  if (error instanceof ModelStoreError && error.code === 'package_missing') {
    const where = `s3://${options.bucket}/${modelPackagePrefix(options.name, options.version)}`;
    return new ApiError(503, `model ${options.name} version ${options.version} is not in ${where}; push it with \`aigw models push\``, {
      code: 'model_not_pushed',
      headers,
    });
  }
  return new ApiError(503, 'The model is currently unavailable. Please try again later.', { code: 'model_unavailable', headers });
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
