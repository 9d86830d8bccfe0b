/**
 * The shared contract suite against the PostgreSQL adapter, on a scratch database of the local server, plus
 * what the issue asks of it beyond the contract: no reader skips an event however commits interleave.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EventStore, openEventStore, type StoredEvent } from '../../src/index.js';
import { postgresSkipReason, type ScratchDatabase, scratchDatabase } from '../helpers/postgres.js';
import { collect, describeEventStore, describeGroupContract, ev, take } from './eventStore.contract.js';

let db: ScratchDatabase | undefined;
const url = async (): Promise<string> => {
  db ??= await scratchDatabase('contract');
  return db.url;
};
afterAll(async () => {
  await db?.drop();
});

describeEventStore('postgres', async () => openEventStore(await url()), {
  skipReason: postgresSkipReason,
  reopen: async () => openEventStore(await url()),
});
describeGroupContract('postgres', async () => openEventStore(await url()), { skipReason: postgresSkipReason });

describe.skipIf(postgresSkipReason !== undefined)('PostgreSQL adapter', () => {
  let stores: EventStore[] = [];
  beforeAll(async () => {
    const u = await url();
    stores = await Promise.all([openEventStore(u), openEventStore(u), openEventStore(u)]);
  });
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
  });

  it('a subscriber gets every event, in order, while slow (large) and fast (single) commits race on three connections', async () => {
    const [slow, fast, reader] = stores as [EventStore, EventStore, EventStore];
    const prefix = `race${Date.now()}-`;
    const sub = reader.subscribeToAll({ filter: { streamPrefix: [prefix] } });
    const plain = reader.subscribeToAll({ from: (await reader.headPosition()) ?? 'start' });
    const slowWrites = (async () => {
      for (let i = 0; i < 10; i++)
        await slow.appendToStream(
          `${prefix}slow`,
          Array.from({ length: 2000 }, (_, j) => ev('Big', { i, j, pad: 'x'.repeat(200) })),
        );
    })();
    const fastWrites = Promise.all(
      [0, 1, 2, 3].map(async (w) => {
        const s = w % 2 === 0 ? fast : slow;
        for (let i = 0; i < 150; i++) await s.appendToStream(`${prefix}fast-${w}`, [ev('Small', { w, i })]);
      }),
    );
    await Promise.all([slowWrites, fastWrites]);
    const total = 10 * 2000 + 4 * 150;
    const got = await take(sub, total, 60_000);
    const stored = await collect(reader.readAll({ filter: { streamPrefix: [prefix] } }));
    expect(stored.length).toBe(total);
    expect(got.map((e) => e.position)).toEqual(stored.map((e) => e.position));
    // positions are gap-free over the whole log: the unfiltered subscriber sees consecutive numbers
    const all: StoredEvent[] = await take(plain, total, 60_000);
    for (let i = 1; i < all.length; i++) expect(all[i]!.position).toBe(all[i - 1]!.position + 1n);
    await sub.unsubscribe();
    await plain.unsubscribe();
  });

  it("a process's subscribers read its own commits from memory and another process's from the table: every event, in order, as stored", async () => {
    // Two processes (two store instances) append to the same streams at the same time; subscribers in the first
    // get what it committed from its commits' results and must still read the second's events, which fall in
    // between, from the table: the same events, in the same order, with the same content as readAll gives.
    const [mine, theirs] = stores as [EventStore, EventStore];
    const prefix = `own${Date.now()}-`;
    const shared = `${prefix}shared`;
    const from = (await mine.headPosition()) ?? 'start';
    const all = mine.subscribeToAll({ from });
    const filtered = mine.subscribeToAll({ from, filter: { streamPrefix: [`${prefix}a`, shared] } });
    const typed = mine.subscribeToAll({ from, filter: { eventTypePrefix: ['Odd'] } });
    const stream = mine.subscribeToStream(shared);
    const writes = (s: EventStore, who: string): Promise<void> =>
      (async () => {
        for (let i = 0; i < 60; i++) {
          const type = i % 2 === 0 ? 'Even' : 'Odd';
          if (i % 3 === 0) await s.appendToStream(shared, [ev(type, { who, i })]);
          else
            await s.commit([
              {
                stream: `${prefix}${who}-${i % 4}`,
                events: [ev(type, { who, i }), ev(type, { who, i, second: true })],
              },
              { stream: shared, events: [ev(type, { who, i, shared: true })] },
            ]);
        }
      })();
    await Promise.all([writes(mine, 'a'), writes(theirs, 'b'), writes(mine, 'a2'), writes(theirs, 'b2')]);
    const stored = (await collect(mine.readAll({ filter: { streamPrefix: [prefix] } }))).filter(
      (e) => typeof from !== 'bigint' || e.position > from,
    );
    expect(stored.length).toBe(4 * (20 + 40 * 3));
    const expectOf = (keep: (e: StoredEvent) => boolean): StoredEvent[] => stored.filter(keep);
    const check = async (sub: AsyncIterable<StoredEvent>, want: StoredEvent[]): Promise<void> => {
      const got = (await take(sub, want.length, 30_000)).filter((e) => e.streamName.startsWith(prefix));
      expect(got).toEqual(want);
    };
    // The unfiltered subscriber sees only this test's events after `from` (the other stores are idle).
    await check(all, stored);
    await check(
      filtered,
      expectOf((e) => e.streamName.startsWith(`${prefix}a`) || e.streamName === shared),
    );
    await check(
      typed,
      expectOf((e) => e.type.startsWith('Odd')),
    );
    await check(
      stream,
      expectOf((e) => e.streamName === shared),
    );
    const revisions = expectOf((e) => e.streamName === shared).map((e) => e.revision);
    expect(revisions).toEqual(revisions.map((_, i) => BigInt(i)));
    await Promise.all([all, filtered, typed, stream].map((s) => s.unsubscribe()));
  });

  it('settled() resolves once nothing is in flight (what a virtual clock awaits), at once when idle', async () => {
    const [store] = stores as [EventStore];
    await store.settled!();
    expect(store.busy!()).toBe(false);
    let appended = false;
    const append = store.appendToStream(`settle${Date.now()}`, [ev('A')]).then(() => (appended = true));
    const read = store.headPosition();
    expect(store.busy!()).toBe(true);
    await store.settled!();
    expect(store.busy!()).toBe(false);
    // The answers' continuations are promise callbacks: run by the next turn of the event loop (the clock looks then).
    await new Promise((r) => setImmediate(r));
    expect(appended).toBe(true);
    await Promise.all([append, read]);
  });

  it('wakes a subscriber in another connection within a few milliseconds (LISTEN/NOTIFY, not the poll)', async () => {
    const [writer, reader] = stores as [EventStore, EventStore];
    const stream = `wake${Date.now()}`;
    const sub = reader.subscribeToStream(stream);
    const lags: number[] = [];
    for (let i = 0; i < 20; i++) {
      const sent = Date.now();
      await writer.appendToStream(stream, [ev('Ping', { i })]);
      await take(sub, 1, 5000);
      lags.push(Date.now() - sent);
    }
    await sub.unsubscribe();
    lags.sort((a, b) => a - b);
    // The poll runs every 250 ms; the median wake-up far below it shows the notification did the work.
    expect(lags[10]).toBeLessThan(100);
  });

  it('refuses a database with no store when it must exist, and names it', async () => {
    const empty = await scratchDatabase('empty');
    try {
      await expect(openEventStore(empty.url, { mustExist: true })).rejects.toThrow(/no swf-es store in postgres:\/\//);
    } finally {
      await empty.drop();
    }
  });

  it('reports a database that does not exist as store unavailable, in one line', async () => {
    const u = (await url()).replace(/\/[^/]+$/, '/swf_no_such_database');
    const e = await openEventStore(u).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect((e as Error).message).toMatch(/swf_no_such_database/);
    expect((e as Error).message).not.toMatch(/\n/);
  });

  it('creates the schema once when several processes start at once', async () => {
    const fresh = await scratchDatabase('schema');
    try {
      const opened = await Promise.all(Array.from({ length: 6 }, () => openEventStore(fresh.url)));
      await opened[0]!.appendToStream('s-1', [ev('A')]);
      expect((await collect(opened[5]!.readAll())).length).toBe(1);
      await Promise.all(opened.map((s) => s.close()));
    } finally {
      await fresh.drop();
    }
  });
});
