import { describe, expect, it } from 'vitest';
import { GroupCommit } from '../../src/store/index.js';

/** A writer whose writes end only when the test says so, recording each batch. */
function gatedWriter() {
  const batches: number[][] = [];
  const gates: (() => void)[] = [];
  const commit = new GroupCommit<number, number>({
    write: async (items) => {
      batches.push(items);
      await new Promise<void>((resolve) => gates.push(resolve));
      if (items.includes(-1)) throw new Error('boom');
      return items.map((i) => i * 10);
    },
  });
  const open = async () => {
    while (gates.length === 0) await new Promise((resolve) => setImmediate(resolve));
    gates.shift()!();
  };
  return { commit, batches, open };
}

describe('group commit', () => {
  it('writes an item alone at once, and what arrives during a write together in the next', async () => {
    const { commit, batches, open } = gatedWriter();
    const first = commit.add(1);
    expect(batches).toEqual([[1]]);
    const rest = [commit.add(2), commit.add(3), commit.add(4)];
    expect(batches).toEqual([[1]]);
    await open();
    expect(await first).toBe(10);
    await open();
    expect(await Promise.all(rest)).toEqual([20, 30, 40]);
    expect(batches).toEqual([[1], [2, 3, 4]]);
  });

  it('a failed write rejects its own batch only', async () => {
    const { commit, open } = gatedWriter();
    const ok = commit.add(1);
    const bad = [commit.add(-1), commit.add(2)];
    const later = bad.map((p) => p.catch((error: Error) => error.message));
    await open();
    await open();
    expect(await ok).toBe(10);
    expect(await Promise.all(later)).toEqual(['boom', 'boom']);
    const after = commit.add(5);
    await open();
    expect(await after).toBe(50);
  });

  it('an item added by a caller as its own write resolves is written too (never left queued)', async () => {
    const { commit, batches, open } = gatedWriter();
    const chained = commit.add(1).then(() => commit.add(2));
    await open();
    await open();
    expect(await chained).toBe(20);
    expect(batches).toEqual([[1], [2]]);
    await commit.flush();
  });

  it('keeps each batch within batchSize, oldest first', async () => {
    const batches: number[][] = [];
    let release: () => void = () => undefined;
    const commit = new GroupCommit<number>({
      batchSize: (queued) => Math.min(2, queued.length),
      write: async (items) => {
        batches.push(items);
        if (batches.length === 1) await new Promise<void>((resolve) => (release = resolve));
        return items.map(() => undefined);
      },
    });
    const all = [0, 1, 2, 3, 4, 5].map((i) => commit.add(i));
    release();
    await Promise.all(all);
    expect(batches).toEqual([[0], [1, 2], [3, 4], [5]]);
  });
});
