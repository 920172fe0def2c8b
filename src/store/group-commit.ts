// Group commit: writes that arrive while one is under way go together in the next. Under load,
// many requests' writes become one DynamoDB call; alone, each is written at once (a Lambda
// instance serving one request at a time never waits for company). Each caller hears back when
// the write holding its item has landed, or failed.

interface Pending<T, R> {
  item: T;
  resolve(result: R): void;
  reject(error: unknown): void;
}

export interface GroupCommitOptions<T, R> {
  /** Writes a batch; resolves with one result per item, in order. */
  write(items: T[]): Promise<R[]>;
  /** How many of the queued items (oldest first, at least one) may go in one write; all by default. */
  batchSize?(queued: readonly T[]): number;
}

export class GroupCommit<T, R = void> {
  private readonly queue: Pending<T, R>[] = [];
  private running: Promise<void> | undefined;

  constructor(private readonly options: GroupCommitOptions<T, R>) {}

  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.running ??= this.drain();
    });
  }

  /** Resolves once everything added so far is written (or has failed). */
  async flush(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const size = Math.max(1, this.options.batchSize?.(this.queue.map((p) => p.item)) ?? this.queue.length);
        const batch = this.queue.splice(0, size);
        try {
          const results = await this.options.write(batch.map((p) => p.item));
          batch.forEach((pending, i) => pending.resolve(results[i]!));
        } catch (error) {
          for (const pending of batch) pending.reject(error);
        }
      }
    } finally {
      // Cleared in the same step that found the queue empty: an add() made by a caller this
      // batch resolved runs after it and starts a new drain, instead of waiting in the queue.
      this.running = undefined;
    }
  }
}
