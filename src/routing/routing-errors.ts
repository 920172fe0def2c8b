/** Why a routed request failed as a whole; mapped to OpenAI's error shape at the API edge. */
export type RoutingErrorCode = 'model_unavailable' | 'stream_interrupted';

export class RoutingError extends Error {
  readonly code: RoutingErrorCode;
  readonly status: number;

  constructor(code: RoutingErrorCode, status: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RoutingError';
    this.code = code;
    this.status = status;
  }
}

/** Thrown into an attempt whose first token or next token is later than its deadline. */
export class DeadlineError extends Error {
  constructor(
    readonly kind: 'first_token' | 'stall',
    readonly ms: number,
  ) {
    super(kind === 'first_token' ? `no first token within ${ms} ms` : `no token for ${ms} ms mid-stream`);
    this.name = 'DeadlineError';
  }
}
