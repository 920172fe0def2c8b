// Filters text as it streams: text goes out as soon as no rule could still match across it,
// holding back only the tail some rule might still be growing into. Whole texts go through the
// same code (push everything, then end), so streamed and whole results are the same by design.
//
// Overlapping mask and block matches merge into one masked run, so no part of any matched term
// ever goes out; a block stops the text just before the run or match it falls in.
import { CONTEXT } from './detectors.js';
import type { GuardrailAction, GuardrailSet } from './guardrail-set.js';
import { foldCodePoint, isWordChar } from './text-folding.js';

export interface GuardrailHit {
  rule: string;
  action: GuardrailAction;
}

/** Trimming the consumed front of the buffers is batched: it copies them. */
const TRIM_AFTER = 512;

export class GuardrailStream {
  /** Set once a block rule matched: nothing more goes out. */
  blocked = false;
  readonly hits: GuardrailHit[] = [];

  // The original text and its folded form, from a little before the first undecided position.
  private orig = '';
  private folded = '';
  /** For each folded character: where its code point starts and ends in `orig`. */
  private starts: number[] = [];
  private ends: number[] = [];
  /** Absolute position (in folded characters since the stream began) of folded[0]. */
  private base = 0;
  /** How much of `orig` has gone out (as itself or as a mask). */
  private emitted = 0;
  /** Absolute folded position: every match starting before it is decided. */
  private cursor = 0;
  private state = 0;
  /** Word-list matches not yet decided, by absolute start. */
  private readonly candidates = new Map<number, { end: number; pattern: number }[]>();
  private run: { start: number; end: number; mask: string } | undefined;
  /** A high surrogate whose pair is in the next chunk. */
  private carry = '';

  constructor(private readonly set: GuardrailSet) {}

  /** Characters of the original text pushed but not yet out: what is being held back now. */
  get heldBack(): number {
    return this.orig.length - this.emitted + this.carry.length;
  }

  /** Adds text; returns what may go out now. */
  push(text: string): string {
    if (this.blocked) return '';
    text = this.carry + text;
    this.carry = '';
    const last = text.charCodeAt(text.length - 1);
    if (last >= 0xd800 && last <= 0xdbff) {
      this.carry = text.slice(-1);
      text = text.slice(0, -1);
    }
    this.append(text);
    return this.resolve(false);
  }

  /** The text is complete: decides the rest and returns it. */
  end(): string {
    if (this.blocked) return '';
    // A lone high surrogate at the very end is text too.
    this.append(this.carry);
    this.carry = '';
    return this.resolve(true);
  }

  private append(text: string): void {
    const automaton = this.set.automaton;
    for (const cp of text) {
      const at = this.orig.length;
      this.orig += cp;
      const f = foldCodePoint(cp);
      for (let i = 0; i < f.length; i++) {
        this.folded += f[i];
        this.starts.push(at);
        this.ends.push(at + cp.length);
        if (!automaton) continue;
        this.state = automaton.step(this.state, f.charCodeAt(i));
        if (!automaton.endsPattern(this.state)) continue;
        const end = this.base + this.folded.length;
        automaton.matchesAt(this.state, ({ pattern, length }) => {
          const start = end - length;
          const list = this.candidates.get(start);
          if (list) list.push({ end, pattern });
          else this.candidates.set(start, [{ end, pattern }]);
        });
      }
    }
  }

  private holdBack(): number {
    let hold = this.set.automaton?.pendingLength(this.state) ?? 0;
    for (const { detector } of this.set.detectors) {
      if (hold >= detector.maxLength) continue;
      hold = Math.max(hold, detector.pending(this.folded.slice(-(detector.maxLength + 1))));
    }
    return hold;
  }

  private resolve(final: boolean): string {
    const length = this.base + this.folded.length;
    const decided = final ? length : length - this.holdBack();
    let out = '';
    let p = this.cursor;
    for (; p < decided && !this.blocked; p++) {
      if (this.run && p >= this.run.end) out += this.closeRun();
      const terms = this.candidates.size > 0 ? this.candidates.get(p) : undefined;
      if (terms) {
        this.candidates.delete(p);
        for (const { end, pattern } of terms) {
          const { rule, boundaryBefore, boundaryAfter } = this.set.patterns[pattern]!;
          if (boundaryBefore && isWordChar(this.folded[p - 1 - this.base])) continue;
          if (boundaryAfter && isWordChar(this.folded[end - this.base])) continue;
          out += this.apply(rule, p, end);
        }
      }
      const at = p - this.base;
      const detectors = this.set.detectors;
      for (let d = 0; d < detectors.length; d++) {
        const { rule, detector } = detectors[d]!;
        const n = detector.matchAt(this.folded, at, Math.min(this.folded.length, at + detector.maxLength));
        if (n > 0) out += this.apply(rule, p, p + n);
      }
    }
    if (this.blocked) return out;
    this.cursor = p;
    if (final && this.run) out += this.closeRun();
    out += this.plainUpTo(this.run ? this.run.start : final ? length : this.cursor, final);
    this.trim();
    return out;
  }

  /** Records a match [start, end) (absolute folded positions); returns text that may go out. */
  private apply(ruleIndex: number, start: number, end: number): string {
    const rule = this.set.rules[ruleIndex]!;
    this.hits.push({ rule: rule.name, action: rule.action });
    if (rule.action === 'flag') return '';
    if (rule.action === 'block') {
      this.blocked = true;
      return this.plainUpTo(this.run ? this.run.start : start);
    }
    if (this.run) {
      this.run.end = Math.max(this.run.end, end);
      return '';
    }
    const out = this.plainUpTo(start);
    this.run = { start, end, mask: rule.mask };
    return out;
  }

  private closeRun(): string {
    const run = this.run!;
    this.run = undefined;
    this.emitted = this.ends[run.end - 1 - this.base]!;
    return run.mask;
  }

  /** The original text from what went out so far up to absolute folded position `to`. */
  private plainUpTo(to: number, final = false): string {
    const index = to - this.base;
    const until = final || index >= this.folded.length ? this.orig.length : this.starts[index]!;
    if (until <= this.emitted) return '';
    const text = this.orig.slice(this.emitted, until);
    this.emitted = until;
    return text;
  }

  /** Drops what no decision needs any more, keeping CONTEXT characters before the undecided part. */
  private trim(): void {
    const keepFrom = (this.run ? this.run.start : this.cursor) - CONTEXT - this.base;
    if (keepFrom < TRIM_AFTER) return;
    const origFrom = Math.min(this.starts[keepFrom]!, this.emitted);
    this.folded = this.folded.slice(keepFrom);
    this.starts = this.starts.slice(keepFrom).map((s) => s - origFrom);
    this.ends = this.ends.slice(keepFrom).map((e) => e - origFrom);
    this.orig = this.orig.slice(origFrom);
    this.emitted -= origFrom;
    this.base += keepFrom;
  }
}

/** A whole text at once: the same as streaming it in any pieces. */
export function filterText(set: GuardrailSet, text: string): { text: string; blocked: boolean; hits: GuardrailHit[] } {
  const stream = new GuardrailStream(set);
  const out = stream.push(text) + stream.end();
  return { text: out, blocked: stream.blocked, hits: stream.hits };
}
