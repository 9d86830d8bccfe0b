/** The commit gate: a round of write requests appends together (one commit, one fsync), never held for long. */
import { describe, expect, it } from 'vitest';
import { CommitGate } from '../../src/monitor/testbedWrites.js';

const settled = async (p: Promise<void>): Promise<boolean> => {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
};

describe('CommitGate', () => {
  it('lets a lone request through at once', async () => {
    const gate = new CommitGate(10_000);
    gate.enter();
    expect(await settled(gate.wait())).toBe(true);
    gate.exit();
  });

  it('holds the first of three requests in flight until the other two are ready too, then lets all through', async () => {
    const gate = new CommitGate(10_000);
    gate.enter();
    gate.enter();
    gate.enter();
    const a = gate.wait();
    const b = gate.wait();
    expect(await settled(a)).toBe(false);
    expect(await settled(b)).toBe(false);
    const c = gate.wait();
    expect(await settled(Promise.all([a, b, c]).then(() => undefined))).toBe(true);
  });

  it('lets the waiting ones through when a request in flight ends without writing', async () => {
    const gate = new CommitGate(10_000);
    gate.enter();
    gate.enter();
    const a = gate.wait();
    expect(await settled(a)).toBe(false);
    gate.exit(); // the other one was refused (a 400): nothing more to wait for
    expect(await settled(a)).toBe(true);
  });

  it('waits for a round as large as the last one, but no longer than its limit', async () => {
    const gate = new CommitGate(30);
    for (let i = 0; i < 4; i++) gate.enter();
    const round = [gate.wait(), gate.wait(), gate.wait(), gate.wait()];
    await Promise.all(round);
    for (let i = 0; i < 4; i++) gate.exit();
    // the next round's first request arrives alone: the others are still on their way
    gate.enter();
    const first = gate.wait();
    expect(await settled(first)).toBe(false);
    await expect.poll(() => settled(first), { timeout: 5_000, interval: 5 }).toBe(true);
    gate.exit();
  });
});
