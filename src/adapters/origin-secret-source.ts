// Reads the origin secret's accepted versions from Secrets Manager and keeps them for a few
// minutes, so a rotation reaches every warm gateway soon without a call per request.
import { GetSecretValueCommand, ResourceNotFoundException, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ORIGIN_SECRET_ACCEPTED_STAGES } from '../../infra/origin-protection.js';
import type { OriginSecrets } from './origin-guard.js';

export const ORIGIN_SECRET_TTL_MS = 5 * 60 * 1000;

export interface OriginSecretSourceOptions {
  client: SecretsManagerClient;
  secretId: string;
  ttlMs?: number;
  /** Milliseconds since the epoch; tests move it instead of waiting. */
  now?: () => number;
}

/** The secret could not be read at all (no cached value to fall back on). */
export class OriginSecretError extends Error {
  override readonly name = 'OriginSecretError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * AWSCURRENT and AWSPREVIOUS (absent until the first rotation), cached for ttlMs. Concurrent
 * callers share one read; when a refresh fails, the last values stay in use until one succeeds.
 */
export function originSecretSource(options: OriginSecretSourceOptions): OriginSecrets {
  const ttlMs = options.ttlMs ?? ORIGIN_SECRET_TTL_MS;
  const now = options.now ?? Date.now;
  let cached: { values: readonly string[]; readAt: number } | undefined;
  let reading: Promise<readonly string[]> | undefined;

  const read = async (): Promise<readonly string[]> => {
    const values = await Promise.all(ORIGIN_SECRET_ACCEPTED_STAGES.map((stage) => readStage(options, stage)));
    const accepted = values.filter((value): value is string => value !== undefined && value !== '');
    if (values[0] === undefined) throw new OriginSecretError(`secret ${options.secretId} has no AWSCURRENT string value`);
    cached = { values: accepted, readAt: now() };
    return accepted;
  };

  return async () => {
    if (cached && now() - cached.readAt < ttlMs) return cached.values;
    reading ??= read().finally(() => (reading = undefined));
    try {
      return await reading;
    } catch (error) {
      if (cached) {
        // Keep serving the last values, and ask Secrets Manager again only after another TTL.
        cached = { ...cached, readAt: now() };
        return cached.values;
      }
      if (error instanceof OriginSecretError) throw error;
      throw new OriginSecretError(`cannot read secret ${options.secretId}`, { cause: error });
    }
  };
}

async function readStage(options: OriginSecretSourceOptions, stage: string): Promise<string | undefined> {
  try {
    const out = await options.client.send(new GetSecretValueCommand({ SecretId: options.secretId, VersionStage: stage }));
    return out.SecretString;
  } catch (error) {
    // No AWSPREVIOUS before the first rotation.
    if (error instanceof ResourceNotFoundException && stage !== ORIGIN_SECRET_ACCEPTED_STAGES[0]) return undefined;
    throw error;
  }
}
