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
    let first = -1;
    for (const stop of this.stops) {
      const at = buffer.indexOf(stop);
      if (at !== -1 && (first === -1 || at < first)) first = at;
    }
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
