const MAX_STOP_STRINGS = 4;

/** More stop strings than the OpenAI API allows. */
export class StopSequenceError extends Error {
  readonly code = 'too_many_stop_sequences';

  constructor(count: number) {
    super(`at most ${MAX_STOP_STRINGS} stop sequences are allowed, got ${count}`);
    this.name = 'StopSequenceError';
  }
}

export interface StopPushResult {
  /** Text that is certainly not part of a stop string: show it. */
  emit: string;
  /** A stop string was found; nothing after it is ever emitted. */
  stopped: boolean;
}

/**
 * Where generation stops in `text`: the start of the stop string that is complete soonest (the
 * smallest end; on a tie the longer one), or -1. "Soonest complete" is what a token-by-token
 * stream sees, so the answer is the same however the text is chunked: with stops "c😀b" and
 * "😀", the text "c😀b" stops after "c", because "😀" was complete before "b" arrived.
 */
export function firstCompletedStop(text: string, stops: readonly string[]): number {
  let start = -1;
  let end = Infinity;
  for (const stop of stops) {
    if (stop.length === 0) continue;
    const at = text.indexOf(stop);
    if (at === -1) continue;
    const stopEnd = at + stop.length;
    if (stopEnd < end || (stopEnd === end && at < start)) {
      start = at;
      end = stopEnd;
    }
  }
  return start;
}

/**
 * Finds stop strings in streamed text. Text that could still turn out to be the start of a stop
 * string is held back until it can't be; on a match only the text before it is emitted.
 * Each push costs O(chunk + held) per stop string: held text is shorter than the longest stop.
 */
export class StopSequenceMatcher {
  private readonly stops: string[];
  private held = '';
  private stopped = false;

  /** Empty strings are ignored: they would match everywhere. */
  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
    if (this.stops.length > MAX_STOP_STRINGS) throw new StopSequenceError(this.stops.length);
  }

  push(text: string): StopPushResult {
    if (this.stopped) return { emit: '', stopped: true };
    const buffer = this.held + text;
    const first = firstCompletedStop(buffer, this.stops);
    if (first !== -1) {
      this.stopped = true;
      this.held = '';
      return { emit: buffer.slice(0, first), stopped: true };
    }
    const keep = this.partialStopLength(buffer);
    this.held = buffer.slice(buffer.length - keep);
    return { emit: buffer.slice(0, buffer.length - keep), stopped: false };
  }

  /** At the end of generation: the held-back text, which turned out not to be a stop string. */
  flush(): string {
    const rest = this.stopped ? '' : this.held;
    this.held = '';
    return rest;
  }

  /** Length of the longest suffix of buffer that is a proper prefix of some stop string. */
  private partialStopLength(buffer: string): number {
    let longest = 0;
    for (const stop of this.stops) {
      for (let length = Math.min(stop.length - 1, buffer.length); length > longest; length--) {
        if (buffer.endsWith(stop.slice(0, length))) {
          longest = length;
          break;
        }
      }
    }
    return longest;
  }
}
