// Typed errors of a backend (an OpenAI-compatible upstream); the API edge maps them to a status
// and OpenAI's error shape once, in api/errors.ts, so backends know nothing of HTTP responses.

/**
 * Why a backend refused or failed a generation:
 * - `context_length_exceeded`: max_tokens alone does not fit the model's context (400);
 * - `upstream_unavailable`: the upstream could not be reached, timed out or is at capacity (503);
 * - `upstream_failed`: the upstream failed, refused the gateway's credentials or answered
 *   something unreadable (502);
 * - `upstream_refused`: the upstream refused the request itself with an OpenAI error, passed
 *   through to the client as it was (its own 4xx status, type, param and code).
 */
export type BackendErrorKind = 'context_length_exceeded' | 'upstream_unavailable' | 'upstream_failed' | 'upstream_refused';

export interface UpstreamRefusal {
  status: number;
  type?: string;
  param: string | null;
  code: string | null;
}

export class BackendError extends Error {
  override readonly name = 'BackendError';

  constructor(
    readonly kind: BackendErrorKind,
    message: string,
    readonly detail: {
      /** The request field at fault (context_length_exceeded). */
      param?: string;
      /** Seconds the client should wait (upstream_unavailable). */
      retryAfterSeconds?: string;
      /** What the upstream said (upstream_refused). */
      refusal?: UpstreamRefusal;
      cause?: unknown;
    } = {},
  ) {
    super(message, detail.cause === undefined ? undefined : { cause: detail.cause });
  }
}
