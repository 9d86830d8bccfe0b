/**
 * The PostgreSQL adapter's window of the events its process committed (ownEvents.ts): it answers only for
 * positions (stream revisions) that are its own, walking on while they are consecutive, and never "nothing new".
 */
import { describe, expect, it } from 'vitest';
import { OwnEvents } from '../../src/eventStore/postgres/ownEvents.js';
import type { PreparedEvent } from '../../src/eventStore/validation.js';

let n = 0;
const pe = (type: string, data: unknown = {}): PreparedEvent => ({
  id: `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`,
  type,
  data: JSON.stringify(data),
  metadata: '{}',
});
/** One commit: appends of `count` events each, numbered on from position `after` and each stream's revision. */
function commit(
  own: OwnEvents,
  after: bigint,
  appends: { stream: string; lastRevision: bigint; types: string[] }[],
): bigint {
  let position = after;
  own.committed(
    appends.map((a) => {
      position += BigInt(a.types.length);
      return { stream: a.stream, events: a.types.map((t) => pe(t, { t })), revision: a.lastRevision, position };
    }),
    1_700_000_000_123,
  );
  return position;
}

describe('OwnEvents', () => {
  it('walks on over consecutive commits and stops before a position that is not its own', () => {
    const own = new OwnEvents();
    commit(own, 10n, [{ stream: 'a', lastRevision: 1n, types: ['A1', 'A2'] }]); // 11, 12
    commit(own, 12n, [{ stream: 'b', lastRevision: 0n, types: ['B1'] }]); // 13
    commit(own, 15n, [{ stream: 'a', lastRevision: 3n, types: ['A3'] }]); // 16: 14 and 15 are another's
    const page = own.readAll(10n, 100)!;
    expect(page.events.map((e) => [e.position, e.type, e.streamName, e.revision])).toEqual([
      [11n, 'A1', 'a', 0n],
      [12n, 'A2', 'a', 1n],
      [13n, 'B1', 'b', 0n],
    ]);
    expect(page.scanned).toBe(13n);
    expect(page.events[0]!.data).toEqual({ t: 'A1' });
    expect(page.events[0]!.recordedAt.getTime()).toBe(1_700_000_000_123);
    // 14 is not ours: the server must answer; 15 → 16 is ours again.
    expect(own.readAll(13n, 100)).toBeUndefined();
    expect(own.readAll(15n, 100)!.events.map((e) => e.position)).toEqual([16n]);
    // Past the end: never "nothing new".
    expect(own.readAll(16n, 100)).toBeUndefined();
    expect(own.readAll(5n, 100)).toBeUndefined();
  });

  it('applies the filter and the limit; a walk that finds nothing for the filter leaves it to the server', () => {
    const own = new OwnEvents();
    commit(own, 0n, [
      { stream: 'x-1', lastRevision: 2n, types: ['Keep', 'Drop', 'Keep'] },
      { stream: 'y-1', lastRevision: 0n, types: ['Keep'] },
    ]);
    const keepX = (stream: string, type: string): boolean => stream.startsWith('x-') && type === 'Keep';
    const page = own.readAll(0n, 100, keepX)!;
    expect(page.events.map((e) => e.position)).toEqual([1n, 3n]);
    expect(page.scanned).toBe(4n);
    expect(own.readAll(0n, 1, keepX)).toMatchObject({ scanned: 1n });
    expect(own.readAll(3n, 100, keepX)).toBeUndefined();
  });

  it('reads a stream from a revision while the revisions are consecutive and its own', () => {
    const own = new OwnEvents();
    commit(own, 0n, [{ stream: 's', lastRevision: 1n, types: ['S0', 'S1'] }]);
    commit(own, 5n, [{ stream: 's', lastRevision: 4n, types: ['S4'] }]); // revisions 2, 3 are another's
    expect(own.readStream('s', 0n, 10)!.map((e) => e.revision)).toEqual([0n, 1n]);
    expect(own.readStream('s', 1n, 10)!.map((e) => e.type)).toEqual(['S1']);
    expect(own.readStream('s', 2n, 10)).toBeUndefined();
    expect(own.readStream('s', 4n, 10)!.map((e) => e.position)).toEqual([6n]);
    expect(own.readStream('s', 5n, 10)).toBeUndefined();
    expect(own.readStream('t', 0n, 10)).toBeUndefined();
  });

  it('forgets the oldest commits past its capacity', () => {
    const own = new OwnEvents(4);
    let head = 0n;
    for (let i = 0; i < 4; i++)
      head = commit(own, head, [{ stream: 's', lastRevision: BigInt(2 * i + 1), types: ['E', 'E'] }]);
    expect(own.readAll(0n, 100)).toBeUndefined();
    expect(own.readStream('s', 0n, 100)).toBeUndefined();
    expect(own.readAll(4n, 100)!.events.map((e) => e.position)).toEqual([5n, 6n, 7n, 8n]);
    expect(own.readStream('s', 4n, 100)!.map((e) => e.revision)).toEqual([4n, 5n, 6n, 7n]);
  });
});
