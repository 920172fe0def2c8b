import { ApiError, errorResponse, methodNotAllowed } from './errors.js';

/**
 * CORS. The gateway-wide list says which browser origins may call at all (preflights are
 * answered from it, as they carry no API key); a key's own list narrows that for the key.
 * Requests without an Origin header (servers, curl, SDKs) are not browser requests: unaffected.
 */
export const EXPOSED_HEADERS = [
  'x-request-id',
  'x-aigw-cache',
  'x-aigw-cost-usd',
  'retry-after',
  'x-ratelimit-limit-requests',
  'x-ratelimit-remaining-requests',
  'x-ratelimit-reset-requests',
  'x-ratelimit-limit-tokens',
  'x-ratelimit-remaining-tokens',
  'x-ratelimit-reset-tokens',
].join(', ');

const ALLOWED_REQUEST_HEADERS = 'authorization, content-type, x-api-key, x-aigw-cache-ttl, x-aigw-skip-cache, cache-control';

export function originAllowed(origin: string, allowed: readonly string[]): boolean {
  return allowed.includes('*') || allowed.includes(origin);
}

export function originNotAllowed(origin: string): ApiError {
  return new ApiError(403, `Requests from the origin ${origin} are not allowed.`, { code: 'origin_not_allowed' });
}

/** The answer to an OPTIONS preflight; an OPTIONS without an Origin is no preflight: 405. */
export function preflightResponse(origin: string | null, gatewayOrigins: readonly string[]): Response {
  if (!origin) return errorResponse(methodNotAllowed(undefined, undefined, ['GET', 'POST']));
  if (!originAllowed(origin, gatewayOrigins)) return errorResponse(originNotAllowed(origin));
  return new Response(null, {
    status: 204,
    headers: {
      'access-control-allow-origin': origin,
      'access-control-allow-methods': 'GET, POST, OPTIONS',
      'access-control-allow-headers': ALLOWED_REQUEST_HEADERS,
      'access-control-max-age': '600',
      vary: 'Origin',
    },
  });
}

/** Adds the CORS headers to a response for an allowed origin. */
export function withCorsHeaders(response: Response, origin: string): void {
  response.headers.set('access-control-allow-origin', origin);
  response.headers.set('access-control-expose-headers', EXPOSED_HEADERS);
  response.headers.append('vary', 'Origin');
}
