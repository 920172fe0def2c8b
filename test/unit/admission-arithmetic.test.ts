import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { costMicros, effectiveLimits, formatUsd, limitsOfPlan, UnknownPlanError, windowsAt } from '../../src/admission/index.js';
import { ConfigError, DEFAULT_PLANS, parseConfig } from '../../src/config/index.js';

// Any instant from 2000 to 2100.
const instant = fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2100, 0, 1) });

describe('windows', () => {
  it('name the UTC minute, day and month of any instant and say when each ends', () => {
    fc.assert(
      fc.property(instant, (now) => {
        const w = windowsAt(now);
        const date = new Date(now);
        expect(w.day).toBe(date.toISOString().slice(0, 10));
        expect(w.month).toBe(date.toISOString().slice(0, 7));
        expect(w.secondsToNextMinute).toBeGreaterThanOrEqual(1);
        expect(w.secondsToNextMinute).toBeLessThanOrEqual(60);
        // One reset later, the window has changed; just before it, it has not.
        expect(windowsAt(now + w.secondsToNextMinute * 1000).minute).not.toBe(w.minute);
        expect(windowsAt(now + w.secondsToNextDay * 1000).day).not.toBe(w.day);
        expect(windowsAt(now + (w.secondsToNextDay - 1) * 1000).day).toBe(w.day);
        expect(windowsAt(now + w.secondsToNextMonth * 1000).month).not.toBe(w.month);
        expect(w.secondsToNextMonth).toBeLessThanOrEqual(31 * 86_400);
      }),
      { numRuns: 2000 },
    );
  });

  it('put instants of one minute in one window and the next minute in the next', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000_000 }), fc.integer({ min: 0, max: 59_999 }), (minute, offset) => {
        expect(windowsAt(minute * 60_000 + offset).minute).toBe(String(minute));
        expect(Number(windowsAt((minute + 1) * 60_000 + offset).minute)).toBe(minute + 1);
      }),
    );
  });
});

describe('pricing', () => {
  it('rounds each side up to whole micro-dollars and never loses money to rounding', () => {
    expect(costMicros(1, 1, { inputMicrosPerMillionTokens: 150_000, outputMicrosPerMillionTokens: 600_000 })).toBe(2);
    expect(costMicros(1_000_000, 500_000, { inputMicrosPerMillionTokens: 150_000, outputMicrosPerMillionTokens: 600_000 })).toBe(450_000);
    fc.assert(
      fc.property(fc.nat(1_000_000), fc.nat(1_000_000), fc.nat(100_000_000), fc.nat(100_000_000), (p, c, inPrice, outPrice) => {
        const cost = costMicros(p, c, { inputMicrosPerMillionTokens: inPrice, outputMicrosPerMillionTokens: outPrice });
        expect(Number.isInteger(cost)).toBe(true);
        expect(cost).toBeGreaterThanOrEqual((p * inPrice + c * outPrice) / 1e6);
        expect(cost).toBeLessThan((p * inPrice + c * outPrice) / 1e6 + 2);
      }),
    );
  });

  it('formats micro-dollars exactly', () => {
    expect(formatUsd(0)).toBe('0.000000');
    expect(formatUsd(1234)).toBe('0.001234');
    expect(formatUsd(12_000_001)).toBe('12.000001');
  });
});

describe('plans and key overrides', () => {
  it('start from the plan and let the key override any limit', () => {
    const plans = { ...DEFAULT_PLANS, pro: { requests_per_minute: 1000, budget_usd_per_day: 5_000_000 } };
    expect(effectiveLimits(plans, 'free', {})).toEqual(limitsOfPlan(DEFAULT_PLANS.free!));
    expect(effectiveLimits(plans, 'free', {})).toMatchObject({ requestsPerMonth: 1_000_000 });
    expect(effectiveLimits(plans, 'pro', { requestsPerMinute: 10, tokensPerDay: 500 })).toEqual({
      requestsPerMinute: 10,
      budgetMicrosPerDay: 5_000_000,
      tokensPerDay: 500,
    });
    expect(() => effectiveLimits(plans, 'gold', {})).toThrow(UnknownPlanError);
  });

  it('read dollar budgets from aigw.toml exactly, as integer micro-dollars', () => {
    const config = parseConfig('[plans.pro]\nbudget_usd_per_day = "2.50"\nbudget_usd_per_month = 100\n', {});
    expect(config.plans.pro).toEqual({ budget_usd_per_day: 2_500_000, budget_usd_per_month: 100_000_000 });
    expect(config.plans.free).toEqual(DEFAULT_PLANS.free);
    expect(() => parseConfig('[plans.pro]\nbudget_usd_per_day = "2.1234567"\n', {})).toThrow(ConfigError);
    expect(() => parseConfig('[plans.pro]\nbudget_usd_per_day = "-1"\n', {})).toThrow(/plans\.pro\.budget_usd_per_day/);
  });
});
