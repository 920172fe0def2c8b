import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../src/routing/index.js';

function breaker(failureThreshold = 2, cooldownMs = 1000) {
  const clock = { now: 0 };
  return { clock, breaker: new CircuitBreaker({ failureThreshold, cooldownMs, now: () => clock.now }) };
}

describe('circuit breaker', () => {
  it('opens after the threshold of failures in a row, and a success in between resets the count', () => {
    const { breaker: b } = breaker(2);
    b.tryAcquire()!.failure();
    b.tryAcquire()!.success();
    b.tryAcquire()!.failure();
    expect(b.state).toBe('closed');
    b.tryAcquire()!.failure();
    expect(b.state).toBe('open');
    expect(b.tryAcquire()).toBeUndefined();
  });

  it('lets exactly one probe through when half-open; its success closes the breaker', () => {
    const { breaker: b, clock } = breaker(1, 1000);
    b.tryAcquire()!.failure();
    clock.now = 999;
    expect(b.tryAcquire()).toBeUndefined();
    clock.now = 1000;
    expect(b.state).toBe('half-open');
    const probe = b.tryAcquire()!;
    expect(probe.probe).toBe(true);
    expect(b.tryAcquire()).toBeUndefined();
    probe.success();
    expect(b.state).toBe('closed');
    expect(b.tryAcquire()?.probe).toBe(false);
  });

  it('a failed probe opens it for another whole cooldown', () => {
    const { breaker: b, clock } = breaker(3, 1000);
    for (let i = 0; i < 3; i++) b.tryAcquire()!.failure();
    clock.now = 1500;
    b.tryAcquire()!.failure();
    expect(b.state).toBe('open');
    clock.now = 2499;
    expect(b.tryAcquire()).toBeUndefined();
    clock.now = 2500;
    expect(b.tryAcquire()?.probe).toBe(true);
  });

  it('a probe released without an outcome (client gone) lets the next request probe', () => {
    const { breaker: b, clock } = breaker(1, 10);
    b.tryAcquire()!.failure();
    clock.now = 10;
    b.tryAcquire()!.release();
    expect(b.state).toBe('half-open');
    expect(b.tryAcquire()?.probe).toBe(true);
  });

  it('counts only the first outcome a permit reports', () => {
    const { breaker: b } = breaker(1);
    const permit = b.tryAcquire()!;
    permit.success();
    permit.failure();
    expect(b.state).toBe('closed');
  });
});
