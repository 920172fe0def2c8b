import type { RateLimitStatus } from '../admission/index.js';

/** OpenAI's x-ratelimit-* headers for the limits that are set (reset as "12s", like OpenAI's). */
export function rateLimitHeaders(status: RateLimitStatus): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [kind, state] of [
    ['requests', status.requests],
    ['tokens', status.tokens],
  ] as const) {
    if (!state) continue;
    headers[`x-ratelimit-limit-${kind}`] = String(state.limit);
    headers[`x-ratelimit-remaining-${kind}`] = String(state.remaining);
    headers[`x-ratelimit-reset-${kind}`] = `${state.resetSeconds}s`;
  }
  return headers;
}
