// Aho–Corasick over folded text: every occurrence of any of many terms in one pass, one
// character at a time, so a stream can be fed as it arrives. Patterns are UTF-16 strings.

export interface TermMatch {
  /** Index of the pattern in the list given to the constructor. */
  pattern: number;
  /** Length of the pattern: the match ends at the character just fed. */
  length: number;
}

/**
 * Nodes are numbered; transitions live in one Map per node (sparse: a 10,000-term list over
 * many scripts has few children per node). `output` links skip to the next node that ends a term.
 */
export class AhoCorasick {
  private readonly next: Map<number, number>[] = [new Map()];
  private readonly fail: number[] = [0];
  private readonly depth: number[] = [0];
  /** Patterns ending exactly at a node. */
  private readonly ends: number[][] = [[]];
  /** Nearest node on the fail chain (excluding itself) that ends a pattern, or -1. */
  private readonly output: number[] = [-1];
  private readonly lengths: number[];
  readonly longestPattern: number;

  constructor(patterns: readonly string[]) {
    this.lengths = patterns.map((p) => p.length);
    this.longestPattern = Math.max(0, ...this.lengths);
    patterns.forEach((pattern, index) => {
      if (pattern.length === 0) return;
      let node = 0;
      for (let i = 0; i < pattern.length; i++) {
        const code = pattern.charCodeAt(i);
        let child = this.next[node]!.get(code);
        if (child === undefined) {
          child = this.next.length;
          this.next.push(new Map());
          this.fail.push(0);
          this.depth.push(this.depth[node]! + 1);
          this.ends.push([]);
          this.output.push(-1);
          this.next[node]!.set(code, child);
        }
        node = child;
      }
      this.ends[node]!.push(index);
    });
    this.link();
  }

  /** Breadth first: a node's fail link points at a shallower node, already linked. */
  private link(): void {
    const queue: number[] = [...this.next[0]!.values()];
    for (let head = 0; head < queue.length; head++) {
      const node = queue[head]!;
      for (const [code, child] of this.next[node]!) {
        let f = this.fail[node]!;
        while (f !== 0 && !this.next[f]!.has(code)) f = this.fail[f]!;
        const target = this.next[f]!.get(code);
        this.fail[child] = target !== undefined && target !== child ? target : 0;
        const failNode = this.fail[child]!;
        this.output[child] = this.ends[failNode]!.length > 0 ? failNode : this.output[failNode]!;
        queue.push(child);
      }
    }
  }

  /** The state after reading one more character. State 0 is the start. */
  step(state: number, code: number): number {
    for (;;) {
      const target = this.next[state]!.get(code);
      if (target !== undefined) return target;
      if (state === 0) return 0;
      state = this.fail[state]!;
    }
  }

  /** How many characters at the end of the text read so far could still begin a match. */
  pendingLength(state: number): number {
    return this.depth[state]!;
  }

  /** Whether any pattern ends at `state` (most states end none: callers skip matchesAt). */
  endsPattern(state: number): boolean {
    return this.ends[state]!.length > 0 || this.output[state]! > 0;
  }

  /** Every pattern that ends at the character that led to `state`. */
  matchesAt(state: number, found: (match: TermMatch) => void): void {
    for (let node = this.ends[state]!.length > 0 ? state : this.output[state]!; node > 0; node = this.output[node]!) {
      for (const pattern of this.ends[node]!) found({ pattern, length: this.lengths[pattern]! });
    }
  }

  /** Every match in a whole string, by end position (for tests and whole texts). */
  findAll(text: string): { pattern: number; start: number; end: number }[] {
    const found: { pattern: number; start: number; end: number }[] = [];
    let state = 0;
    for (let i = 0; i < text.length; i++) {
      state = this.step(state, text.charCodeAt(i));
      this.matchesAt(state, ({ pattern, length }) => found.push({ pattern, start: i + 1 - length, end: i + 1 }));
    }
    return found;
  }
}
