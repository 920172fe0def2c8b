/**
 * A circuit breaker per target, per gateway instance: after `failureThreshold` failures in a row
 * the target is skipped for `cooldownMs`, then one request probes it (half-open). The probe's
 * success closes the breaker, its failure opens it for another cooldown. So a dead upstream costs
 * a few timeouts per instance and cooldown, not one per request.
 */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  /** Failures in a row that open the breaker. */
  failureThreshold: number;
  /** How long an open breaker turns requests away before letting one probe through. */
  cooldownMs: number;
  now?: () => number;
}

/** A call the breaker let through: report exactly one outcome (later reports are ignored). */
export interface BreakerPermit {
  readonly probe: boolean;
  /** The target answered (including a client error it explained: it is alive). */
  success(): void;
  /** The target failed: unreachable, too slow, a 5xx, throttled, or a broken stream. */
  failure(): void;
  /** Neither: the client went away before the target showed either way. */
  release(): void;
}

export class CircuitBreaker {
  private failures = 0;
  private openedAt: number | undefined;
  private probing = false;
  private readonly now: () => number;

  constructor(private readonly options: CircuitBreakerOptions) {
    this.now = options.now ?? Date.now;
  }

  get state(): BreakerState {
    if (this.openedAt === undefined) return 'closed';
    return this.now() - this.openedAt >= this.options.cooldownMs ? 'half-open' : 'open';
  }

  /** A permit to call the target, or undefined while it is open (or half-open with its one probe out). */
  tryAcquire(): BreakerPermit | undefined {
    const state = this.state;
    if (state === 'open') return undefined;
    if (state === 'half-open') {
      if (this.probing) return undefined;
      this.probing = true;
      return this.permit(true);
    }
    return this.permit(false);
  }

  private permit(probe: boolean): BreakerPermit {
    let reported = false;
    const once = (outcome: () => void) => () => {
      if (reported) return;
      reported = true;
      if (probe) this.probing = false;
      outcome();
    };
    return {
      probe,
      success: once(() => {
        this.failures = 0;
        this.openedAt = undefined;
      }),
      failure: once(() => {
        this.failures++;
        // A failed probe reopens at once; a closed breaker opens at the threshold.
        if (probe || this.failures >= this.options.failureThreshold) this.openedAt = this.now();
      }),
      release: once(() => undefined),
    };
  }
}

/** One breaker per target id, created on first use; lives as long as the gateway instance. */
export class CircuitBreakers {
  private readonly breakers = new Map<string, CircuitBreaker>();

  constructor(private readonly options: CircuitBreakerOptions) {}

  for(targetId: string): CircuitBreaker {
    let breaker = this.breakers.get(targetId);
    if (!breaker) {
      breaker = new CircuitBreaker(this.options);
      this.breakers.set(targetId, breaker);
    }
    return breaker;
  }
}
