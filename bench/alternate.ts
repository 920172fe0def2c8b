// Taking turns: how the engine benchmark's pairs (aigw and the floor, aigw greedy and sampling,
// llama.cpp and aigw) are timed. No engine is imported here, so any process may use it.

export interface RunTiming {
  ttftMs: number;
  /** Decode time per token after the first one. */
  msPerToken: number;
}

/** One timed generation of `newTokens` tokens. */
export type RunOnce = (newTokens: number) => Promise<RunTiming>;

/**
 * Runs `first` and `second` in turns, `repeats` times each after a warm-up of both, and returns
 * the median timing of each: run by run, a slow spell of the machine slows both.
 */
export async function alternate(first: RunOnce, second: RunOnce, repeats: number, newTokens: number): Promise<[RunTiming, RunTiming]> {
  await first(8);
  await second(8);
  const runs: [RunTiming[], RunTiming[]] = [[], []];
  for (let i = 0; i < repeats; i++) {
    runs[0].push(await first(newTokens));
    runs[1].push(await second(newTokens));
  }
  const medians = (timings: RunTiming[]): RunTiming => ({ ttftMs: median(timings.map((t) => t.ttftMs)), msPerToken: median(timings.map((t) => t.msPerToken)) });
  return [medians(runs[0]), medians(runs[1])];
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
