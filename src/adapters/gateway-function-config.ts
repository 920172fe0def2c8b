// What the gateway function reads from its environment beyond infra/function-env.ts: the
// aigw.toml settings (AIGW_CONFIG) and each model function's price and context length.
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { z } from 'zod';
import { GATEWAY_ENV, readModelFunctionUrls, type ModelFunctionUrl } from '../../infra/function-env.js';
import type { ModelPrice } from '../admission/pricing.js';
import { ConfigError, parseConfig, type AigwConfig } from '../config/index.js';
import { createDynamoDbClient, type Store } from '../store/index.js';

/** The deploying project's aigw.toml, as TOML text; unset means every default. */
export const GATEWAY_CONFIG_ENV = 'AIGW_CONFIG';

/** AIGW_<SECTION>_<KEY> overrides the gateway function honours; other AIGW_ names are the stack's own. */
const OVERRIDABLE_SECTIONS = ['gateway', 'admission', 'cache', 'monitoring', 'dynamodb'];

/**
 * [gateway], [admission], [cache], [plans], [monitoring] and [dynamodb] timeout_ms apply in
 * Lambda; [deploy] belongs to the CDK app and is dropped, [model] and [performance] are local only.
 */
export function readGatewayConfig(env: Record<string, string | undefined> = process.env): AigwConfig {
  let text = env[GATEWAY_CONFIG_ENV] ?? '';
  if (text !== '') {
    let document: Record<string, unknown>;
    try {
      document = parseToml(text);
    } catch (error) {
      throw new ConfigError(`${GATEWAY_CONFIG_ENV} is not valid TOML: ${(error as Error).message}`, [], { cause: error });
    }
    delete document.deploy;
    text = stringifyToml(document);
  }
  const overrides = Object.fromEntries(
    Object.entries(env).filter(([name]) => OVERRIDABLE_SECTIONS.some((section) => name.startsWith(`AIGW_${section.toUpperCase()}_`))),
  );
  return parseConfig(text, overrides, GATEWAY_CONFIG_ENV);
}

/** A model function as the gateway needs it: where it is, and what admission must know up front. */
export interface ModelFunction extends ModelFunctionUrl {
  contextLength: number;
  price: ModelPrice;
  /** Completion tokens when a request sets none. */
  maxTokens?: number;
  /** Requests admitted to this model at once across all gateways (a DynamoDB count); unset: no cap. */
  maxConcurrentRequests?: number;
}

const micros = z.number().int().min(0);
const modelFunctionExtras = z.object({
  contextLength: z.number().int().positive(),
  price: z.object({ inputMicrosPerMillionTokens: micros, outputMicrosPerMillionTokens: micros }),
  maxTokens: z.number().int().positive().optional(),
  maxConcurrentRequests: z.number().int().positive().optional(),
});

/**
 * The entries of AIGW_MODEL_FUNCTION_URLS with their `contextLength`, `price` (integer
 * micro-dollars per million tokens) and optional `maxTokens`: the gateway can't read the model
 * bucket, so the stack copies them from each model's manifest or config.
 */
export function readModelFunctions(env: Record<string, string | undefined> = process.env): ModelFunction[] {
  const urls = readModelFunctionUrls(env);
  const raw = urls.length === 0 ? [] : (JSON.parse(env[GATEWAY_ENV.modelFunctionUrls]!) as unknown[]);
  return urls.map((url, index) => {
    const extras = modelFunctionExtras.safeParse(raw[index]);
    if (!extras.success) {
      throw new ConfigError(`${GATEWAY_ENV.modelFunctionUrls}[${index}] (${url.name}@${url.version}): ${z.prettifyError(extras.error)}`);
    }
    return { ...url, ...extras.data };
  });
}

/** The gateway's two views of the table. */
export interface GatewayStores {
  /** API keys and the response cache: the local replica. */
  readonly local: Store;
  /**
   * Every admission write (LIMITS#, USAGE#): the replica in AIGW_LIMITS_REGION (the primary
   * region, so limits are exact across regions), or the same store as `local` when unset.
   */
  readonly limits: Store;
}

export interface GatewayStoresOptions {
  /** The function's own region (AWS_REGION). */
  readonly region: string;
  readonly tableName: string;
  readonly requestTimeoutMs: number;
}

/** Builds the stores from AIGW_LIMITS_REGION; a global table's replicas share their name. */
export function readGatewayStores(options: GatewayStoresOptions, env: Record<string, string | undefined> = process.env): GatewayStores {
  const storeIn = (region: string): Store => ({
    client: createDynamoDbClient({ region, requestTimeoutMs: options.requestTimeoutMs }),
    tableName: options.tableName,
  });
  const local = storeIn(options.region);
  const limitsRegion = env[GATEWAY_ENV.limitsRegion];
  if (limitsRegion === undefined || limitsRegion === '' || limitsRegion === options.region) return { local, limits: local };
  return { local, limits: storeIn(limitsRegion) };
}
