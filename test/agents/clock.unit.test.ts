/**
 * The virtual clock waits for outside work (a network store's queries) before it moves on; with a `settled`
 * promise it waits on that promise instead of looking again every millisecond.
 */
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/agents/clock.js';

describe('VirtualClock and outside work', () => {
  it('does not move on while the outside is busy, and moves on once it has settled', async () => {
    let busy = true;
    let settle: () => void = () => {};
    let asked = 0;
    const settled = (): Promise<void> => {
      asked++;
      return new Promise<void>((r) => (settle = r));
    };
    const clock = new VirtualClock(
      1_000,
      () => {},
      () => busy,
      settled,
    );
    let woke = false;
    const sleeper = clock.task(async () => {
      await clock.sleep(5);
      woke = true;
    });
    // The clock asks for the promise and waits on it; nothing moves while the outside is busy.
    await expect.poll(() => asked, { timeout: 5000 }).toBe(1);
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(woke).toBe(false);
    expect(clock.now()).toBe(1_000);
    expect(asked).toBe(1); // no polling loop: one wait
    busy = false;
    settle();
    await sleeper;
    expect(woke).toBe(true);
    expect(clock.now()).toBe(6_000);
  });

  it('looks again when the outside settles but is busy once more', async () => {
    let busy = true;
    const settles: (() => void)[] = [];
    const clock = new VirtualClock(
      0,
      () => {},
      () => busy,
      () => new Promise<void>((r) => settles.push(r)),
    );
    const sleeper = clock.task(() => clock.sleep(1));
    await expect.poll(() => settles.length, { timeout: 5000 }).toBe(1);
    settles[0]!(); // settled, but new work started meanwhile: still busy
    await expect.poll(() => settles.length, { timeout: 5000 }).toBe(2);
    expect(clock.now()).toBe(0);
    busy = false;
    settles[1]!();
    await sleeper;
    expect(clock.now()).toBe(1_000);
  });
});
