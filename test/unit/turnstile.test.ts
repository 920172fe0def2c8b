import { describe, expect, it } from 'vitest';
import { Turnstile } from '../../src/backends/turnstile.js';

const never = new AbortController().signal;

describe('Turnstile', () => {
  it('lets capacity holders in at once and the rest in arrival order as places free up', async () => {
    const turnstile = new Turnstile(2);
    const order: string[] = [];
    const a = await turnstile.enter(never);
    const b = await turnstile.enter(never);
    const c = turnstile.enter(never).then((leave) => (order.push('c'), leave));
    const d = turnstile.enter(never).then((leave) => (order.push('d'), leave));
    await Promise.resolve();
    expect(order).toEqual([]);
    a();
    a(); // a second release of the same place is ignored
    const leaveC = await c;
    expect(order).toEqual(['c']);
    b();
    const leaveD = await d;
    expect(order).toEqual(['c', 'd']);
    leaveC();
    leaveD();
    // Both places are free again: two holders at once get in, a third waits.
    const first = await turnstile.enter(never);
    const second = await turnstile.enter(never);
    let thirdIn = false;
    const third = turnstile.enter(never).then((leave) => ((thirdIn = true), leave));
    await Promise.resolve();
    expect(thirdIn).toBe(false);
    first();
    (await third)();
    second();
  });

  it('drops an aborted waiter from the line', async () => {
    const turnstile = new Turnstile(1);
    const leave = await turnstile.enter(never);
    const controller = new AbortController();
    const waiting = turnstile.enter(controller.signal);
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
    leave();
    const next = await turnstile.enter(never);
    next();
  });
});
