/**
 * How the EventStoreDB adapter keeps appends under the server's MaxAppendSize: the size the server counts, the
 * split into parts, and the chaining of exact revisions from part to part. No server needed.
 */
import { describe, expect, it } from 'vitest';
import type { ExpectedRevision } from '../../src/index.js';
import {
  SERVER_DEFAULT_MAX_APPEND_SIZE,
  appendInParts,
  appendSizeOf,
  parseConnectionString,
  splitAppend,
} from '../../src/eventStore/esdb/mapping.js';
import { type PreparedEvent, prepareEvents } from '../../src/eventStore/validation.js';

const event = (type: string, bytes: number): PreparedEvent => ({
  id: '00000000-0000-4000-8000-000000000000',
  type,
  data: JSON.stringify('x'.repeat(bytes - 2)),
  metadata: '{}',
});

describe('EventStoreDB append size', () => {
  it('counts data and metadata in UTF-8 bytes and the type at 2 bytes per character, as the server does', () => {
    const [e] = prepareEvents([{ type: 'SliceQueued', data: { s: 'é€' }, metadata: { k: 1 } }]);
    // data {"s":"é€"} = 8 ASCII + 2 + 3 bytes; metadata {"k":1} = 7; type 11 chars x 2
    expect(appendSizeOf(e!)).toBe(13 + 7 + 22);
  });

  it('keeps a batch under the limit in one part', () => {
    const events = [event('A', 100), event('B', 100)];
    expect(splitAppend(events, 1_000)).toEqual([events]);
  });

  it('fills each part up to the limit exactly, in order, with every event once', () => {
    const events = Array.from({ length: 10 }, (_, i) => event(`T${i}`, 96)); // 96 + 2 + 4 = 102 bytes each
    expect(appendSizeOf(events[0]!)).toBe(102);
    const parts = splitAppend(events, 306);
    expect(parts.map((p) => p.length)).toEqual([3, 3, 3, 1]);
    expect(parts.flat()).toEqual(events);
    for (const p of parts) expect(p.reduce((n, e) => n + appendSizeOf(e), 0)).toBeLessThanOrEqual(306);
  });

  it('sends an event larger than the limit alone, so the server refusal names it', () => {
    const big = event('Big', 5_000);
    const parts = splitAppend([event('A', 100), big, event('B', 100)], 1_000);
    expect(parts.map((p) => p.map((e) => e.type))).toEqual([['A'], ['Big'], ['B']]);
  });

  it('cuts a batch of hundreds of slices at the server default of 1 MiB', () => {
    const slices = Array.from({ length: 400 }, (_, i) => event(`SliceQueued${i % 10}`, 4_000));
    const parts = splitAppend(slices, SERVER_DEFAULT_MAX_APPEND_SIZE);
    expect(parts.length).toBe(2);
    expect(parts.flat().length).toBe(400);
  });

  it('appends each part at the exact revision the previous part ended at; the first carries the caller expectation', async () => {
    const calls: [string[], ExpectedRevision][] = [];
    let revision = 4n;
    const result = await appendInParts([['a', 'b'], ['c'], ['d', 'e']], 'any', async (part, expected) => {
      calls.push([part, expected]);
      revision += BigInt(part.length);
      return { nextRevision: revision, position: revision * 10n };
    });
    expect(calls).toEqual([
      [['a', 'b'], 'any'],
      [['c'], 6n],
      [['d', 'e'], 7n],
    ]);
    expect(result).toEqual({ nextRevision: 9n, position: 90n });
  });

  it('stops at the first part that fails, leaving the earlier parts written', async () => {
    const written: string[][] = [];
    await expect(
      appendInParts([['a'], ['b'], ['c']], 3n, async (part, expected) => {
        if (part[0] === 'b') throw new Error(`conflict at ${String(expected)}`);
        written.push(part);
        return { nextRevision: 4n };
      }),
    ).rejects.toThrow('conflict at 4');
    expect(written).toEqual([['a']]);
  });

  it('takes maxAppendSize out of the connection string before the client sees it', () => {
    expect(parseConnectionString('esdb://h:2113?tls=false')).toEqual({
      client: 'esdb://h:2113?tls=false',
      maxAppendBytes: SERVER_DEFAULT_MAX_APPEND_SIZE,
    });
    expect(parseConnectionString('kurrentdb://h:2113?maxAppendSize=2048&tls=false')).toEqual({
      client: 'esdb://h:2113?tls=false',
      maxAppendBytes: 2048,
    });
    expect(parseConnectionString('esdb://h:2113?tls=false&MaxAppendSize=4096')).toEqual({
      client: 'esdb://h:2113?tls=false',
      maxAppendBytes: 4096,
    });
    expect(parseConnectionString('esdb://h:2113?maxAppendSize=4096')).toEqual({
      client: 'esdb://h:2113',
      maxAppendBytes: 4096,
    });
    expect(() => parseConnectionString('esdb://h:2113?maxAppendSize=16767217')).toThrow(/invalid maxAppendSize/);
  });
});
