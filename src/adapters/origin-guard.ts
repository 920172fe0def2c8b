// Keeps function URLs from being called around CloudFront: only requests carrying the origin
// secret header CloudFront adds reach the gateway; the check runs before anything else.
import { createHash, timingSafeEqual } from 'node:crypto';
import { ORIGIN_SECRET_HEADER } from '../../infra/origin-protection.js';
import { ApiError, errorResponse } from '../api/errors.js';
import type { Gateway } from '../gateway.js';
import type { RequestLogger } from '../telemetry/index.js';

/** The secret values accepted right now (current and, during a rotation, previous). */
export type OriginSecrets = () => Promise<readonly string[]>;

/** Wraps the gateway: a missing or wrong origin secret gets 403, an unreadable secret 503. */
export function withOriginSecret(gateway: Gateway, getSecrets: OriginSecrets, logger?: RequestLogger): Gateway {
  return async (request, runtime) => {
    const presented = request.headers.get(ORIGIN_SECRET_HEADER);
    if (presented === null) return forbidden();
    let secrets: readonly string[];
    try {
      secrets = await getSecrets();
    } catch (error) {
      logger?.info('origin secret unavailable', { error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
      return errorResponse(
        new ApiError(503, 'The service cannot check where requests come from right now. Please try again shortly.', {
          code: 'origin_check_unavailable',
          headers: { 'retry-after': '1' },
        }),
      );
    }
    if (!matchesAny(presented, secrets)) return forbidden();
    // The secret stops here: nothing behind the guard (logs, upstreams) ever sees it.
    const headers = new Headers(request.headers);
    headers.delete(ORIGIN_SECRET_HEADER);
    return gateway(new Request(request, { headers }), runtime);
  };
}

/** Compares digests, so every comparison takes the same time whatever the lengths and contents. */
function matchesAny(presented: string, secrets: readonly string[]): boolean {
  const digest = sha256(presented);
  let matched = false;
  for (const secret of secrets) matched = timingSafeEqual(digest, sha256(secret)) || matched;
  return matched;
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

function forbidden(): Response {
  return errorResponse(
    new ApiError(403, 'Requests must go through the gateway endpoint, not the function URL.', { code: 'origin_forbidden' }),
  );
}
