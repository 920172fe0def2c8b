// The environment contract between the CDK stacks and the Lambda entry points: the stacks set
// these variables, functions/*.ts read them. No CDK imports here: Lambda bundles this file.
import { z } from 'zod';

/** Variables of the gateway function. */
export const GATEWAY_ENV = {
  /** DynamoDB table name (the local replica in every region). */
  tableName: 'AIGW_TABLE_NAME',
  /** JSON array of ModelFunctionUrl: the model functions of this region, called with SigV4. */
  modelFunctionUrls: 'AIGW_MODEL_FUNCTION_URLS',
  /** Secrets Manager secret id (name) holding the CloudFront origin secret, replicated per region. */
  originSecretId: 'AIGW_ORIGIN_SECRET_ID',
  /**
   * Region whose replica takes every admission write (LIMITS#, USAGE#): the primary's, so limits
   * are exact across regions. Unset: the local replica (the primary itself, or per-region limits).
   */
  limitsRegion: 'AIGW_LIMITS_REGION',
} as const;

/** Variables of a model function. */
export const MODEL_ENV = {
  bucket: 'AIGW_MODEL_BUCKET',
  name: 'AIGW_MODEL_NAME',
  version: 'AIGW_MODEL_VERSION',
  /** Where the package is cached in /tmp across warm invocations. */
  cacheDir: 'AIGW_MODEL_CACHE_DIR',
} as const;

export const MODEL_CACHE_DIR = '/tmp/aigw-models';

const modelFunctionUrlSchema = z.object({
  name: z.string().min(1),
  version: z.string().min(1),
  url: z.url(),
});

export type ModelFunctionUrl = z.infer<typeof modelFunctionUrlSchema>;

/** Reads AIGW_MODEL_FUNCTION_URLS; an unset variable means no model functions in this region. */
export function readModelFunctionUrls(env: Record<string, string | undefined> = process.env): ModelFunctionUrl[] {
  const raw = env[GATEWAY_ENV.modelFunctionUrls];
  if (raw === undefined || raw === '') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new Error(`${GATEWAY_ENV.modelFunctionUrls} is not JSON`);
  }
  const result = z.array(modelFunctionUrlSchema).safeParse(parsed);
  if (!result.success) {
    throw new Error(`${GATEWAY_ENV.modelFunctionUrls}: ${z.prettifyError(result.error)}`);
  }
  return result.data;
}
