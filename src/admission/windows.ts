/**
 * The UTC windows that limits count in. Rate limits use fixed one-minute windows: simple and
 * exact under concurrency, at the price of a burst of up to twice the limit across a boundary
 * (the end of one minute plus the start of the next). Budgets use calendar days and months.
 */
export interface Windows {
  /** e.g. `29774563` (minutes since the epoch). */
  minute: string;
  /** e.g. `2026-11-27`. */
  day: string;
  /** e.g. `2026-11`. */
  month: string;
  secondsToNextMinute: number;
  secondsToNextDay: number;
  secondsToNextMonth: number;
}

export function windowsAt(nowMs: number): Windows {
  const now = new Date(nowMs);
  const iso = now.toISOString();
  const minuteIndex = Math.floor(nowMs / 60_000);
  const nextDay = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  const nextMonth = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
  return {
    minute: String(minuteIndex),
    day: iso.slice(0, 10),
    month: iso.slice(0, 7),
    secondsToNextMinute: secondsUntil((minuteIndex + 1) * 60_000, nowMs),
    secondsToNextDay: secondsUntil(nextDay, nowMs),
    secondsToNextMonth: secondsUntil(nextMonth, nowMs),
  };
}

/** Whole seconds, rounded up, never 0: a client told "retry after 0" would spin. */
function secondsUntil(targetMs: number, nowMs: number): number {
  return Math.max(1, Math.ceil((targetMs - nowMs) / 1000));
}
