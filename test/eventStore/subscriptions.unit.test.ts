import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/eventStore/eventStore.js';
import { catchUpSubscription, ChangeNotifier, streamInterest } from '../../src/eventStore/shared/subscriptions.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('ChangeNotifier', () => {
  it('wakes a waiter only for appends to the streams it is interested in', async () => {
    const n = new ChangeNotifier();
    const woken: string[] = [];
    void n.wait(undefined, undefined, (s) => s.startsWith('run-')).then(() => woken.push('run'));
    void n.wait(undefined, undefined, (s) => s === 'slices-1').then(() => woken.push('slices'));
    void n.wait().then(() => woken.push('any'));
    n.notify(new Set(['results-1']));
    await tick();
    expect(woken).toEqual(['any']);
    n.notify(new Set(['agent-x', 'run-1']));
    await tick();
    expect(woken).toEqual(['any', 'run']);
    // A notification naming no streams (another process, a delivery state) wakes everyone.
    n.notify();
    await tick();
    expect(woken).toEqual(['any', 'run', 'slices']);
    expect(n.waiting).toBe(0);
  });

  it('tells whether a change that concerns an interest came after a version', () => {
    const n = new ChangeNotifier();
    const v0 = n.version;
    const slices = (s: string): boolean => s === 'slices-1';
    expect(n.changedSince(v0, slices)).toBe(false);
    n.notify(new Set(['results-1']));
    expect(n.changedSince(v0, slices)).toBe(false);
    expect(n.changedSince(v0)).toBe(true);
    n.notify(new Set(['slices-1']));
    expect(n.changedSince(v0, slices)).toBe(true);
    const v2 = n.version;
    n.notify();
    expect(n.changedSince(v2, slices)).toBe(true);
  });

  it('a wait with `since` resolves at once only for a relevant change', async () => {
    const n = new ChangeNotifier();
    const since = n.version;
    n.notify(new Set(['results-1']));
    let done = false;
    void n.wait(undefined, since, (s) => s === 'slices-1').then(() => (done = true));
    await tick();
    expect(done).toBe(false);
    n.notify(new Set(['slices-1']));
    await tick();
    expect(done).toBe(true);
  });

  it('stays bounded with many streams, and then counts every later check as a change', () => {
    const n = new ChangeNotifier();
    const since = n.version;
    for (let i = 0; i < 1500; i++) n.notify(new Set([`agent-${i}`]));
    expect(n.changedSince(since, (s) => s === 'slices-1')).toBe(true);
  });

  it("streamInterest follows a filter's stream prefixes; a type-only filter is interested in every stream", () => {
    const i = streamInterest({ streamPrefix: ['run-', 'data-'] })!;
    expect(i('run-1')).toBe(true);
    expect(i('results-1')).toBe(false);
    expect(streamInterest({ eventTypePrefix: ['slice'] })).toBeUndefined();
    expect(streamInterest(undefined)).toBeUndefined();
  });
});

describe('catchUpSubscription', () => {
  const event = (position: number): StoredEvent => ({
    id: `e${position}`,
    streamName: 'run-1',
    revision: BigInt(position - 1),
    position: BigInt(position),
    type: 't',
    data: {},
    metadata: null,
    recordedAt: new Date(0),
  });

  it('does not ask the store again after an empty page until a relevant change', async () => {
    const n = new ChangeNotifier();
    const log: StoredEvent[] = [event(1)];
    let reads = 0;
    const sub = catchUpSubscription(
      0n,
      (cursor, limit) => {
        reads++;
        const events = log.filter((e) => e.position > cursor).slice(0, limit);
        return { events, scanned: cursor };
      },
      n,
      (e) => e.position,
      (s) => s.startsWith('run-'),
    );
    const it = sub[Symbol.asyncIterator]();
    expect((await it.next()).value).toMatchObject({ id: 'e1' });
    expect(sub.drain!(10)).toEqual([]);
    const afterEmpty = reads;
    expect(sub.drain!(10)).toEqual([]); // nothing changed: no read
    n.notify(new Set(['results-1'])); // not its streams: no read
    expect(sub.drain!(10)).toEqual([]);
    expect(reads).toBe(afterEmpty);
    const next = it.next();
    log.push(event(2));
    n.notify(new Set(['run-1']));
    expect((await next).value).toMatchObject({ id: 'e2' });
    expect(reads).toBeGreaterThan(afterEmpty);
    await sub.unsubscribe();
  });
});
