// [[models]] entries with a base_url as backends: an OpenAI-compatible upstream (another aigw,
// Amazon Bedrock, vLLM, OpenAI) whose API key comes from the environment or Secrets Manager.
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { upstreamBackend } from '../backends/upstream-backend.js';
import type { ModelBackend } from '../backends/model-backend.js';
import type { ModelEntryConfig } from '../config/index.js';

/** An upstream's key is missing where the entry says it is. */
export class UpstreamKeyError extends Error {
  override readonly name = 'UpstreamKeyError';
}

export interface UpstreamKeySources {
  env: Record<string, string | undefined>;
  /** For `api_key_secret`; absent where Secrets Manager is not configured. */
  secrets?: SecretsManagerClient;
}

/** The key of one upstream entry, read once at start; undefined when the upstream needs none. */
export async function upstreamApiKey(entry: ModelEntryConfig, sources: UpstreamKeySources): Promise<string | undefined> {
  if (entry.api_key_env !== undefined) {
    const key = sources.env[entry.api_key_env];
    if (!key) throw new UpstreamKeyError(`model ${entry.name}: ${entry.api_key_env} is not set (api_key_env in [[models]])`);
    return key;
  }
  if (entry.api_key_secret !== undefined) {
    if (!sources.secrets) throw new UpstreamKeyError(`model ${entry.name}: api_key_secret needs Secrets Manager; locally, use api_key_env`);
    const out = await sources.secrets.send(new GetSecretValueCommand({ SecretId: entry.api_key_secret })).catch((error: unknown) => {
      throw new UpstreamKeyError(`model ${entry.name}: cannot read secret ${entry.api_key_secret}: ${(error as Error).message}`, { cause: error });
    });
    if (!out.SecretString) throw new UpstreamKeyError(`model ${entry.name}: secret ${entry.api_key_secret} has no string value`);
    return out.SecretString;
  }
  return undefined;
}

/** The entry's version: its own, else the upstream model's name (a new upstream model is a new version). */
export function upstreamVersion(entry: ModelEntryConfig): string {
  return entry.version ?? entry.upstream_model ?? entry.name;
}

/** One upstream entry as a backend (`base_url` without `/v1`). */
export function upstreamModelBackend(entry: ModelEntryConfig, apiKey: string | undefined): ModelBackend {
  if (entry.base_url === undefined) throw new TypeError(`model ${entry.name} is a local package, not an upstream`);
  return upstreamBackend({
    id: entry.name,
    version: `${entry.name}@${upstreamVersion(entry)}`,
    baseUrl: entry.base_url.replace(/\/v1\/?$/, ''),
    upstreamModel: entry.upstream_model ?? entry.name,
    price: { inputMicrosPerMillionTokens: entry.input_usd_per_million_tokens!, outputMicrosPerMillionTokens: entry.output_usd_per_million_tokens! },
    contextLength: entry.context_length!,
    defaultMaxTokens: entry.max_tokens,
    apiKey,
    timeoutMs: entry.timeout_ms,
    ownedBy: new URL(entry.base_url).host,
  });
}

export async function upstreamModelBackends(entries: readonly ModelEntryConfig[], sources: UpstreamKeySources): Promise<ModelBackend[]> {
  const upstreams = entries.filter((entry) => entry.base_url !== undefined);
  return Promise.all(upstreams.map(async (entry) => upstreamModelBackend(entry, await upstreamApiKey(entry, sources))));
}
