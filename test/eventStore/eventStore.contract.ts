/**
 * The event store contract, written once and run against every adapter (memory, SQLite, EventStoreDB).
 * Tests never assume an empty log: each one works in streams of its own (a fresh prefix), so the same suite
 * runs against a shared EventStoreDB server.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConcurrencyError,
  type EventFilter,
  type EventStore,
  ExpectedVersionConflictError,
  type GroupEvent,
  type NewEvent,
  StoreClosedError,
  type StoredEvent,
  StoreUnavailableError,
  StreamNotFoundError,
  ValidationError,
} from '../../src/index.js';

export interface ContractOptions {
  /** When set, the suite reports it skipped and why (e.g. no EventStoreDB server). */
  skipReason?: string;
  /** Opens a second handle on the same store (a restart); absent for stores that do not persist. */
  reopen?: () => Promise<EventStore>;
}

export const ev = (type: string, data: unknown = {}, extra: Partial<NewEvent> = {}): NewEvent => ({
  type,
  data,
  ...extra,
});

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const e of it) out.push(e);
  return out;
}

/** Takes `n` items from a live iterable, failing after `timeoutMs`. */
export async function take<T>(iterable: AsyncIterable<T>, n: number, timeoutMs = 5000): Promise<T[]> {
  const out: T[] = [];
  if (n === 0) return out;
  const iterator = iterable[Symbol.asyncIterator]();
  const deadline = Date.now() + timeoutMs;
  while (out.length < n) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms with ${out.length} of ${n} items`);
    let timer: NodeJS.Timeout | undefined;
    const next = await Promise.race([
      iterator.next(),
      new Promise<'timeout'>((r) => {
        timer = setTimeout(() => r('timeout'), left);
      }),
    ]);
    clearTimeout(timer);
    if (next === 'timeout') throw new Error(`timed out after ${timeoutMs} ms with ${out.length} of ${n} items`);
    if (next.done) break;
    out.push(next.value);
  }
  return out;
}

const fresh = (): string => `t${randomUUID().slice(0, 8)}`;

export function describeEventStore(
  name: string,
  factory: () => Promise<EventStore>,
  options: ContractOptions = {},
): void {
  if (options.skipReason) {
    describe(`event store contract: ${name}`, () => {
      it.skipIf(true)(`skipped: ${options.skipReason}`, () => {});
    });
    return;
  }

  describe(`event store contract: ${name}`, () => {
    let store: EventStore;
    let p: string;
    beforeAll(async () => {
      store = await factory();
    });
    afterAll(async () => {
      await store.close();
    });
    const stream = (s: string): string => `${p}-${s}`;
    const own = (): { streamPrefix: string[] } => ({ streamPrefix: [`${p}-`] });
    const setup = (): void => {
      p = fresh();
    };

    describe('appendToStream', () => {
      it('starts a new stream at revision 0 and returns the revision and position of the last event', async () => {
        setup();
        const r1 = await store.appendToStream(stream('a'), [ev('A'), ev('B')], { expectedRevision: 'no_stream' });
        expect(r1.nextRevision).toBe(1n);
        expect(typeof r1.position).toBe('bigint');
        const r2 = await store.appendToStream(stream('a'), [ev('C')], { expectedRevision: r1.nextRevision });
        expect(r2.nextRevision).toBe(2n);
        expect(r2.position > r1.position).toBe(true);
        const stored = await collect(store.readStream(stream('a')));
        expect(stored.map((e) => [e.type, e.revision])).toEqual([
          ['A', 0n],
          ['B', 1n],
          ['C', 2n],
        ]);
        expect(stored[2]!.position).toBe(r2.position);
      });

      it('gives positions that increase strictly over the whole log, across streams', async () => {
        setup();
        const results = [];
        for (let i = 0; i < 6; i++) results.push(await store.appendToStream(stream(`s${i % 3}`), [ev('X', { i })]));
        for (let i = 1; i < results.length; i++) expect(results[i]!.position > results[i - 1]!.position).toBe(true);
        const all = await collect(store.readAll({ filter: own() }));
        expect(all.map((e) => (e.data as { i: number }).i)).toEqual([0, 1, 2, 3, 4, 5]);
      });

      it('stores id, type, data, metadata, stream, revision, position and recordedAt', async () => {
        setup();
        const id = randomUUID();
        const data = { run_id: '100010', nested: { list: [1, 'two', null, true] }, unicode: 'ünï © 😀' };
        const metadata = { correlationId: 'c1', causationId: 'k1' };
        await store.appendToStream(stream('shape'), [{ id, type: 'stf_gen', data, metadata }]);
        const [e] = await collect(store.readStream(stream('shape')));
        expect(e).toMatchObject({ id, type: 'stf_gen', data, metadata, streamName: stream('shape'), revision: 0n });
        expect(e!.recordedAt).toBeInstanceOf(Date);
        expect(Math.abs(e!.recordedAt.getTime() - Date.now())).toBeLessThan(60_000);
      });

      it('defaults event ids to fresh UUIDs and metadata to an empty object', async () => {
        setup();
        await store.appendToStream(stream('ids'), [ev('A'), ev('A')]);
        const [a, b] = await collect(store.readStream(stream('ids')));
        expect(a!.id).toMatch(/^[0-9a-f-]{36}$/);
        expect(a!.id).not.toBe(b!.id);
        expect(a!.metadata).toEqual({});
      });

      it('refuses an exact expected revision that is not the current one, naming stream, expected and actual', async () => {
        setup();
        await store.appendToStream(stream('x'), [ev('A'), ev('B')]);
        const err = await store
          .appendToStream(stream('x'), [ev('C')], { expectedRevision: 0n })
          .catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ExpectedVersionConflictError);
        expect(err).toBeInstanceOf(ConcurrencyError);
        expect(err).toMatchObject({ stream: stream('x'), expected: 0n, actual: 1n });
        expect((await collect(store.readStream(stream('x')))).length).toBe(2);
      });

      it('settles concurrent appends one by one: a conflict fails alone, the others are stored', async () => {
        setup();
        const results = await Promise.allSettled([
          store.appendToStream(stream('c'), [ev('A', { w: 1 })], { expectedRevision: 'no_stream' }),
          store.appendToStream(stream('c'), [ev('A', { w: 2 })], { expectedRevision: 'no_stream' }),
          store.appendToStream(stream('d'), [ev('B'), ev('C')], { expectedRevision: 'no_stream' }),
          store.commit([
            { stream: stream('e'), events: [ev('D')], expectedRevision: 'no_stream' },
            { stream: stream('c'), events: [ev('E')], expectedRevision: 5n },
          ]),
        ]);
        expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected']);
        expect((await collect(store.readStream(stream('c')))).map((e) => e.data)).toEqual([{ w: 1 }]);
        expect((await collect(store.readStream(stream('d')))).length).toBe(2);
        if (store.capabilities.atomicCommit) {
          await expect(collect(store.readStream(stream('e')))).rejects.toBeInstanceOf(StreamNotFoundError);
        } else {
          // Appends run one by one: the first is stored before the second conflicts.
          expect((await collect(store.readStream(stream('e')))).map((e) => e.type)).toEqual(['D']);
        }
      });

      it("checks 'no_stream' and 'stream_exists'", async () => {
        setup();
        await expect(
          store.appendToStream(stream('m'), [ev('A')], { expectedRevision: 'stream_exists' }),
        ).rejects.toMatchObject({
          actual: 'no_stream',
        });
        await store.appendToStream(stream('m'), [ev('A')], { expectedRevision: 'no_stream' });
        await expect(
          store.appendToStream(stream('m'), [ev('B')], { expectedRevision: 'no_stream' }),
        ).rejects.toBeInstanceOf(ExpectedVersionConflictError);
        const r = await store.appendToStream(stream('m'), [ev('B')], { expectedRevision: 'stream_exists' });
        expect(r.nextRevision).toBe(1n);
      });

      it('refuses an exact revision on a missing stream', async () => {
        setup();
        await expect(store.appendToStream(stream('none'), [ev('A')], { expectedRevision: 0n })).rejects.toMatchObject({
          stream: stream('none'),
          actual: 'no_stream',
        });
      });

      it('treats a repeated append of the same ids at the same place as done: same result, nothing stored twice', async () => {
        setup();
        // With expected revision 'no_stream' on every try, this is idempotency with an exact expectation.
        const events = [ev('A', { n: 1 }, { id: randomUUID() }), ev('B', { n: 2 }, { id: randomUUID() })];
        const first = await store.appendToStream(stream('idem'), events, { expectedRevision: 'no_stream' });
        const again = await store.appendToStream(stream('idem'), events, { expectedRevision: 'no_stream' });
        expect(again).toEqual(first);
        await store.appendToStream(stream('idem'), [ev('C')], { expectedRevision: 1n });
        const third = await store.appendToStream(stream('idem'), events, { expectedRevision: 'no_stream' });
        expect(third).toEqual(first);
        expect((await collect(store.readStream(stream('idem')))).map((e) => e.type)).toEqual(['A', 'B', 'C']);
      });

      it('treats a repeat with an exact expected revision as done', async () => {
        setup();
        await store.appendToStream(stream('idem2'), [ev('A')]);
        const events = [ev('B', {}, { id: randomUUID() })];
        const first = await store.appendToStream(stream('idem2'), events, { expectedRevision: 0n });
        expect(await store.appendToStream(stream('idem2'), events, { expectedRevision: 0n })).toEqual(first);
        expect((await collect(store.readStream(stream('idem2')))).length).toBe(2);
      });

      it("treats an immediate repeat with 'any' as done (guaranteed at any time: capability idempotentWithAnyRevision)", async () => {
        setup();
        await store.appendToStream(stream('idem3'), [ev('A')]);
        const events = [ev('B', {}, { id: randomUUID() }), ev('C', {}, { id: randomUUID() })];
        const first = await store.appendToStream(stream('idem3'), events, { expectedRevision: 'any' });
        // EventStoreDB (capability false) still dedupes this from its cache of recent ids; a restart would empty it.
        expect(await store.appendToStream(stream('idem3'), events, { expectedRevision: 'any' })).toEqual(first);
        expect((await collect(store.readStream(stream('idem3')))).length).toBe(3);
        if (store.capabilities.idempotentWithAnyRevision) {
          await store.appendToStream(stream('idem3'), [ev('D')]);
          expect(await store.appendToStream(stream('idem3'), events, { expectedRevision: 'any' })).toEqual(first);
          expect((await collect(store.readStream(stream('idem3')))).map((e) => e.type)).toEqual(['A', 'B', 'C', 'D']);
        }
      });

      it('refuses stored ids appended somewhere else when ids are unique over the log (capability uniqueEventIds)', async () => {
        setup();
        const e = ev('A', {}, { id: randomUUID() });
        await store.appendToStream(stream('i1'), [e], { expectedRevision: 'no_stream' });
        const elsewhere = store.appendToStream(stream('i2'), [e], { expectedRevision: 'no_stream' });
        if (store.capabilities.uniqueEventIds) {
          await expect(elsewhere).rejects.toBeInstanceOf(ConcurrencyError);
          await expect(collect(store.readStream(stream('i2')))).rejects.toBeInstanceOf(StreamNotFoundError);
        } else {
          // Ids are checked per stream only: the other stream stores the same id.
          await expect(elsewhere).resolves.toMatchObject({ nextRevision: 0n });
          expect((await collect(store.readStream(stream('i2')))).map((x) => x.id)).toEqual([e.id]);
        }
      });
    });

    describe('append size (capability atomicAppendBytes)', () => {
      it('stores an append larger than the atomic limit whole and in order, and a repeat of it as done', async () => {
        setup();
        // Three events of ~600 KB: over EventStoreDB's default 1 MiB per append, under the 1 MiB per event limit.
        const events = [0, 1, 2].map((i) => ev('Big', { i, pad: 'x'.repeat(600_000) }, { id: randomUUID() }));
        await store.appendToStream(stream('big'), [ev('A')]);
        const first = await store.appendToStream(stream('big'), events, { expectedRevision: 0n });
        expect(first.nextRevision).toBe(3n);
        expect(await store.appendToStream(stream('big'), events, { expectedRevision: 0n })).toEqual(first);
        const stored = await collect(store.readStream(stream('big')));
        expect(stored.map((e) => (e.data as { i?: number }).i)).toEqual([undefined, 0, 1, 2]);
        expect(stored.map((e) => e.revision)).toEqual([0n, 1n, 2n, 3n]);
        if (store.capabilities.atomicAppendBytes !== undefined) {
          expect(store.capabilities.atomicAppendBytes).toBeLessThan(1_800_000);
        }
      });
    });

    describe('a closed store', () => {
      it('throws the same typed error from every call: StoreClosedError, a store-unavailable error', async () => {
        const closing = await factory();
        await closing.close();
        const calls: [string, () => Promise<unknown>][] = [
          ['appendToStream', () => closing.appendToStream(`${fresh()}-closed`, [ev('A')])],
          ['readStream', () => collect(closing.readStream(`${fresh()}-closed`))],
          ['readAll', () => collect(closing.readAll({ maxCount: 1 }))],
        ];
        for (const [what, call] of calls) {
          // a call may throw before it returns its promise: both count
          const error: unknown = await Promise.resolve()
            .then(call)
            .then(
              () => undefined,
              (e: unknown) => e,
            );
          expect(error, what).toBeInstanceOf(StoreClosedError);
          expect(error, what).toBeInstanceOf(StoreUnavailableError);
        }
      });
    });

    describe('bad input', () => {
      it('rejects invalid stream names and stores nothing', async () => {
        setup();
        for (const bad of ['', ' spaced name', '$system', 'x'.repeat(300), 'a/b']) {
          await expect(store.appendToStream(bad, [ev('A')])).rejects.toBeInstanceOf(ValidationError);
        }
        await expect(store.appendToStream(stream('ok'), [ev('A')])).resolves.toBeDefined();
      });

      it('rejects data that is not JSON-serializable, naming it, and stores nothing of the batch', async () => {
        setup();
        const circular: Record<string, unknown> = {};
        circular.self = circular;
        for (const data of [{ big: 10n }, circular, { f: () => 1 }, { n: Number.NaN }]) {
          const err = await store.appendToStream(stream('bad'), [ev('A'), ev('B', data)]).catch((e: unknown) => e);
          expect(err).toBeInstanceOf(ValidationError);
          expect((err as Error).message).toMatch(/JSON/);
        }
        await expect(collect(store.readStream(stream('bad')))).rejects.toBeInstanceOf(StreamNotFoundError);
      });

      it('rejects an event over 1 MiB', async () => {
        setup();
        const err = await store
          .appendToStream(stream('big'), [ev('A', { blob: 'x'.repeat(1024 * 1024 + 1) })])
          .catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ValidationError);
        expect((err as Error).message).toMatch(/1 MiB/);
      });

      it('rejects bad expected revisions, event types and ids', async () => {
        setup();
        await expect(store.appendToStream(stream('r'), [ev('A')], { expectedRevision: -1n })).rejects.toBeInstanceOf(
          ValidationError,
        );
        await expect(
          store.appendToStream(stream('r'), [ev('A')], { expectedRevision: 3 as unknown as bigint }),
        ).rejects.toBeInstanceOf(ValidationError);
        await expect(store.appendToStream(stream('r'), [ev('')])).rejects.toBeInstanceOf(ValidationError);
        await expect(store.appendToStream(stream('r'), [ev('A', {}, { id: 'not-a-uuid' })])).rejects.toBeInstanceOf(
          ValidationError,
        );
        await expect(store.appendToStream(stream('r'), [])).rejects.toBeInstanceOf(ValidationError);
      });
    });

    describe('readStream', () => {
      it('reads forwards and backwards, from a revision, with maxCount', async () => {
        setup();
        await store.appendToStream(
          stream('r'),
          [0, 1, 2, 3, 4].map((i) => ev('N', { i })),
        );
        const i = (es: StoredEvent[]): number[] => es.map((e) => (e.data as { i: number }).i);
        expect(i(await collect(store.readStream(stream('r'))))).toEqual([0, 1, 2, 3, 4]);
        expect(i(await collect(store.readStream(stream('r'), { from: 2n })))).toEqual([2, 3, 4]);
        expect(i(await collect(store.readStream(stream('r'), { from: 1n, maxCount: 2 })))).toEqual([1, 2]);
        expect(i(await collect(store.readStream(stream('r'), { direction: 'backwards' })))).toEqual([4, 3, 2, 1, 0]);
        expect(i(await collect(store.readStream(stream('r'), { direction: 'backwards', from: 2n })))).toEqual([
          2, 1, 0,
        ]);
        expect(i(await collect(store.readStream(stream('r'), { direction: 'backwards', maxCount: 1 })))).toEqual([4]);
        expect(i(await collect(store.readStream(stream('r'), { from: 'end' })))).toEqual([]);
      });

      it('raises StreamNotFoundError when a missing stream is iterated', async () => {
        setup();
        const reading = store.readStream(stream('missing'));
        await expect(collect(reading)).rejects.toBeInstanceOf(StreamNotFoundError);
        await expect(collect(store.readStream(stream('missing')))).rejects.toMatchObject({ stream: stream('missing') });
      });

      it('reads more events than one page', async () => {
        setup();
        const batch = Array.from({ length: 2500 }, (_, i) => ev('N', { i }));
        await store.appendToStream(stream('long'), batch);
        const all = await collect(store.readStream(stream('long')));
        expect(all.length).toBe(2500);
        expect(all.every((e, i) => e.revision === BigInt(i))).toBe(true);
        expect((await collect(store.readStream(stream('long'), { direction: 'backwards' }))).length).toBe(2500);
      });
    });

    describe('readAll', () => {
      it('reads from a position (inclusive), both directions, with maxCount', async () => {
        setup();
        const r = [];
        for (let i = 0; i < 4; i++) r.push(await store.appendToStream(stream('all'), [ev('N', { i })]));
        const i = (es: StoredEvent[]): number[] => es.map((e) => (e.data as { i: number }).i);
        expect(i(await collect(store.readAll({ from: r[1]!.position, filter: own() })))).toEqual([1, 2, 3]);
        expect(i(await collect(store.readAll({ from: r[1]!.position, maxCount: 2, filter: own() })))).toEqual([1, 2]);
        expect(i(await collect(store.readAll({ direction: 'backwards', maxCount: 3, filter: own() })))).toEqual([
          3, 2, 1,
        ]);
        expect(
          i(await collect(store.readAll({ direction: 'backwards', from: r[2]!.position, filter: own() }))),
        ).toEqual([2, 1, 0]);
        const head = await store.headPosition();
        expect(head !== undefined && head >= r[3]!.position).toBe(true);
      });

      it('filters by stream prefix, by event type prefix, and by both', async () => {
        setup();
        await store.appendToStream(stream('run-1'), [ev('stf_gen'), ev('start_run')]);
        await store.appendToStream(stream('data-1'), [ev('stf_ready')]);
        await store.appendToStream(stream('run-2'), [ev('stf_gen')]);
        const types = (es: StoredEvent[]): string[] => es.map((e) => `${e.streamName.slice(p.length + 1)}:${e.type}`);
        expect(types(await collect(store.readAll({ filter: { streamPrefix: [`${p}-run-`] } })))).toEqual([
          'run-1:stf_gen',
          'run-1:start_run',
          'run-2:stf_gen',
        ]);
        const byType = await collect(
          store.readAll({ filter: { eventTypePrefix: ['stf_'] }, direction: 'backwards', maxCount: 50 }),
        );
        expect(byType.every((e) => e.type.startsWith('stf_'))).toBe(true);
        expect(
          types(
            await collect(
              store.readAll({ filter: { streamPrefix: [`${p}-run-`, `${p}-data-`], eventTypePrefix: ['stf_'] } }),
            ),
          ),
        ).toEqual(['run-1:stf_gen', 'data-1:stf_ready', 'run-2:stf_gen']);
      });

      it('a prefix matches exactly the names that start with it, at its edges too', async () => {
        setup();
        // '.' is the character after '-': a range filter must not take 'x.1' for 'x-'; 'x-' itself starts with 'x-'.
        await store.appendToStream(stream('x-'), [ev('A')]);
        await store.appendToStream(stream('x-1'), [ev('B')]);
        await store.appendToStream(stream('x.1'), [ev('C')]);
        await store.appendToStream(stream('x+1'), [ev('D')]);
        await store.appendToStream(stream('x-1'), [ev('B2')]);
        const read = async (filter: EventFilter): Promise<string[]> =>
          (await collect(store.readAll({ filter }))).filter((e) => e.streamName.startsWith(p)).map((e) => e.type);
        expect(await read({ streamPrefix: [`${p}-x-`] })).toEqual(['A', 'B', 'B2']);
        expect(await read({ streamPrefix: [`${p}-x.`, `${p}-x+`] })).toEqual(['C', 'D']);
        expect(await read({ streamPrefix: [`${p}-x`], eventTypePrefix: ['B2'] })).toEqual(['B2']);
        expect(await read({ streamPrefix: [`${p}-x`], eventTypePrefix: ['B'] })).toEqual(['B', 'B2']);
        expect(await read({ streamPrefix: [`${p}-x`], eventTypePrefix: [''] })).toEqual(['A', 'B', 'C', 'D', 'B2']);
        // A prefix no name can have (names are ASCII) matches nothing.
        expect(await read({ streamPrefix: [`${p}-x`], eventTypePrefix: ['Bé'] })).toEqual([]);
      });
    });

    describe('subscriptions', () => {
      it('subscribeToAll catches up, then delivers live events, in order, once', async () => {
        setup();
        await store.appendToStream(stream('sub'), [ev('A', { i: 0 }), ev('A', { i: 1 })]);
        const sub = store.subscribeToAll({ filter: own() });
        const got: number[] = [];
        const done = (async () => {
          for await (const e of sub) {
            got.push((e.data as { i: number }).i);
            if (got.length === 5) break;
          }
        })();
        // the two stored before it came first; what follows arrives live
        await expect.poll(() => got.length).toBe(2);
        await store.appendToStream(stream('sub'), [ev('A', { i: 2 })]);
        await store.appendToStream(stream('other'), [ev('A', { i: 3 }), ev('A', { i: 4 })]);
        await done;
        expect(got).toEqual([0, 1, 2, 3, 4]);
        await sub.unsubscribe();
      });

      it('from a position delivers exactly the events after it', async () => {
        setup();
        await store.appendToStream(stream('after'), [ev('A', { i: 0 })]);
        const r = await store.appendToStream(stream('after'), [ev('A', { i: 1 })]);
        await store.appendToStream(stream('after'), [ev('A', { i: 2 }), ev('A', { i: 3 })]);
        const sub = store.subscribeToAll({ from: r.position, filter: own() });
        const got = await take(sub, 2);
        expect(got.map((e) => (e.data as { i: number }).i)).toEqual([2, 3]);
        await sub.unsubscribe();
      });

      it("from 'end' delivers only new events", async () => {
        setup();
        await store.appendToStream(stream('end'), [ev('A', { i: 0 })]);
        const sub = store.subscribeToAll({ from: 'end', filter: own() });
        await store.appendToStream(stream('end'), [ev('A', { i: 1 })]);
        expect((await take(sub, 1)).map((e) => (e.data as { i: number }).i)).toEqual([1]);
        await sub.unsubscribe();
      });

      it('filters live events by type', async () => {
        setup();
        const sub = store.subscribeToAll({
          from: 'end',
          filter: { streamPrefix: [`${p}-`], eventTypePrefix: ['slice'] },
        });
        await store.appendToStream(stream('f'), [ev('stf_gen'), ev('slice'), ev('stf_ready'), ev('slice_result')]);
        expect((await take(sub, 2)).map((e) => e.type)).toEqual(['slice', 'slice_result']);
        await sub.unsubscribe();
      });

      it('subscribeToStream catches up from a revision and stays live', async () => {
        setup();
        await store.appendToStream(stream('ss'), [ev('A', { i: 0 }), ev('A', { i: 1 })]);
        await store.appendToStream(stream('noise'), [ev('A', { i: 99 })]);
        const sub = store.subscribeToStream(stream('ss'), { from: 0n });
        setTimeout(() => void store.appendToStream(stream('ss'), [ev('A', { i: 2 })]), 20);
        expect((await take(sub, 2)).map((e) => (e.data as { i: number }).i)).toEqual([1, 2]);
        await sub.unsubscribe();
        const fromStart = store.subscribeToStream(stream('ss'));
        expect((await take(fromStart, 3)).map((e) => e.revision)).toEqual([0n, 1n, 2n]);
        await fromStart.unsubscribe();
      });

      it('ends iteration on unsubscribe', async () => {
        setup();
        const sub = store.subscribeToAll({ from: 'end', filter: own() });
        const loop = collect(sub);
        // let the loop start waiting (no timing involved: unsubscribing before it starts must end it too)
        await new Promise((r) => setImmediate(r));
        await sub.unsubscribe();
        await expect(loop).resolves.toEqual([]);
      });

      it('resumes from a checkpoint with no gap and no duplicate', async () => {
        setup();
        const name = `${p}-projection`;
        await store.appendToStream(
          stream('cp'),
          [0, 1, 2].map((i) => ev('A', { i })),
        );
        const first = store.subscribeToAll({ from: (await store.checkpoints.get(name)) ?? 'start', filter: own() });
        const seen: number[] = [];
        for (const e of await take(first, 2)) {
          seen.push((e.data as { i: number }).i);
          await store.checkpoints.set(name, e.position);
        }
        await first.unsubscribe();
        await store.appendToStream(
          stream('cp'),
          [3, 4].map((i) => ev('A', { i })),
        );
        const second = store.subscribeToAll({ from: (await store.checkpoints.get(name)) ?? 'start', filter: own() });
        for (const e of await take(second, 3)) seen.push((e.data as { i: number }).i);
        await second.unsubscribe();
        expect(seen).toEqual([0, 1, 2, 3, 4]);
      });
    });

    describe('commit and checkpoints', () => {
      it('commits appends to several streams and a checkpoint together', async () => {
        setup();
        const r = await store.commit(
          [
            { stream: stream('c1'), events: [ev('A')], expectedRevision: 'no_stream' },
            { stream: stream('c2'), events: [ev('B'), ev('C')], expectedRevision: 'no_stream' },
          ],
          { name: `${p}-agent`, position: 42n },
        );
        expect(r.appends.map((a) => a.nextRevision)).toEqual([0n, 1n]);
        expect(await store.checkpoints.get(`${p}-agent`)).toBe(42n);
      });

      it('writes nothing of a commit whose second append conflicts, when the store is atomic', async () => {
        setup();
        await store.appendToStream(stream('c4'), [ev('A')]);
        await expect(
          store.commit(
            [
              { stream: stream('c3'), events: [ev('A')], expectedRevision: 'no_stream' },
              { stream: stream('c4'), events: [ev('B')], expectedRevision: 'no_stream' },
            ],
            { name: `${p}-agent`, position: 7n },
          ),
        ).rejects.toBeInstanceOf(ExpectedVersionConflictError);
        if (store.capabilities.atomicCommit) {
          await expect(collect(store.readStream(stream('c3')))).rejects.toBeInstanceOf(StreamNotFoundError);
        } else {
          // The first append is stored; the checkpoint, written last, is not.
          expect((await collect(store.readStream(stream('c3')))).length).toBe(1);
        }
        expect(await store.checkpoints.get(`${p}-agent`)).toBeUndefined();
      });

      it('a repeated commit is a no-op that returns the first results', async () => {
        setup();
        const appends = [
          { stream: stream('c5'), events: [ev('A', {}, { id: randomUUID() })], expectedRevision: 'no_stream' as const },
          { stream: stream('c6'), events: [ev('B', {}, { id: randomUUID() })], expectedRevision: 'no_stream' as const },
        ];
        const first = await store.commit(appends, { name: `${p}-cp`, position: 1n });
        expect(await store.commit(appends, { name: `${p}-cp`, position: 1n })).toEqual(first);
        expect((await collect(store.readStream(stream('c6')))).length).toBe(1);
      });

      it('gets and sets checkpoints by subscriber name', async () => {
        setup();
        expect(await store.checkpoints.get(`${p}-nobody`)).toBeUndefined();
        await store.checkpoints.set(`${p}-x`, 5n);
        await store.checkpoints.set(`${p}-x`, 9n);
        await store.checkpoints.set(`${p}-y`, 1n);
        expect(await store.checkpoints.get(`${p}-x`)).toBe(9n);
        expect(await store.checkpoints.get(`${p}-y`)).toBe(1n);
      });
    });

    if (options.reopen) {
      const reopen = options.reopen;
      describe('after a restart', () => {
        it('keeps events, checkpoints and idempotency', async () => {
          setup();
          const events = [ev('A', {}, { id: randomUUID() })];
          const first = await store.appendToStream(stream('restart'), events, { expectedRevision: 'no_stream' });
          await store.checkpoints.set(`${p}-cp`, first.position);
          const other = await reopen();
          try {
            expect(await other.appendToStream(stream('restart'), events, { expectedRevision: 'no_stream' })).toEqual(
              first,
            );
            expect(await other.checkpoints.get(`${p}-cp`)).toBe(first.position);
            expect((await collect(other.readStream(stream('restart')))).length).toBe(1);
          } finally {
            await other.close();
          }
        });
      });
    }
  });
}

/** Competing consumers: the same contract for every adapter. */
export function describeGroupContract(
  name: string,
  factory: () => Promise<EventStore>,
  options: ContractOptions = {},
): void {
  if (options.skipReason) {
    describe(`competing consumers contract: ${name}`, () => {
      it.skipIf(true)(`skipped: ${options.skipReason}`, () => {});
    });
    return;
  }
  describe(`competing consumers contract: ${name}`, () => {
    let store: EventStore;
    beforeAll(async () => {
      store = await factory();
    });
    afterAll(async () => {
      await store.close();
    });
    const n = (e: GroupEvent): number => (e.data as { i: number }).i;

    it('hands each event to one member at a time and each member gets its share', async () => {
      const s = `${fresh()}-queue`;
      await store.appendToStream(
        s,
        Array.from({ length: 40 }, (_, i) => ev('slice', { i })),
      );
      const a = store.subscribeToGroup(s, 'workers', { ackTimeoutMs: 10_000 });
      const b = store.subscribeToGroup(s, 'workers', { ackTimeoutMs: 10_000 });
      const seen = new Map<number, number>();
      const holding = new Set<number>();
      let overlap = 0;
      const work = async (sub: typeof a): Promise<number> => {
        let count = 0;
        for await (const e of sub) {
          if (holding.has(n(e))) overlap++;
          holding.add(n(e));
          await new Promise((r) => setTimeout(r, 1));
          holding.delete(n(e));
          seen.set(n(e), (seen.get(n(e)) ?? 0) + 1);
          await sub.ack(e);
          count++;
          if (seen.size === 40) {
            await a.unsubscribe();
            await b.unsubscribe();
          }
        }
        return count;
      };
      const [ca, cb] = await Promise.all([work(a), work(b)]);
      expect(overlap).toBe(0);
      expect([...seen.values()].every((c) => c === 1)).toBe(true);
      expect(ca + cb).toBe(40);
      expect(ca).toBeGreaterThan(0);
      expect(cb).toBeGreaterThan(0);
    });

    it('redelivers a nacked event with its retry count, then parks it after maxRetryCount', async () => {
      const s = `${fresh()}-poison`;
      const id = randomUUID();
      const appended = await store.appendToStream(s, [ev('slice', { i: 1 }, { id })]);
      const sub = store.subscribeToGroup(s, 'workers', { maxRetryCount: 2, ackTimeoutMs: 10_000 });
      const counts: number[] = [];
      for (const _ of [0, 1, 2]) {
        const [e] = await take(sub, 1);
        counts.push(e!.retryCount);
        await sub.nack(e!, 'retry', 'handler crashed');
      }
      expect(counts).toEqual([0, 1, 2]);
      // parking follows the last nack: wait until it shows
      await expect
        .poll(async () => (await store.listParked(s, 'workers')).length, { timeout: 10_000, interval: 10 })
        .toBe(1);
      const parked = await store.listParked(s, 'workers');
      expect(parked.map((p) => (p.event.data as { i: number }).i)).toEqual([1]);
      expect(parked[0]!.reason).toBe('handler crashed');
      // Listed and replayed parked events are the original event, at its own place in the log.
      expect(parked[0]!.event.position).toBe(appended.position);
      expect(await store.replayParked(s, 'workers')).toBe(1);
      const [again] = await take(sub, 1);
      expect(n(again!)).toBe(1);
      expect(again!.id).toBe(id);
      expect(again!.position).toBe(appended.position);
      expect(again!.revision).toBe(appended.nextRevision);
      await sub.ack(again!);
      expect(await store.listParked(s, 'workers')).toEqual([]);
      await sub.unsubscribe();
    });

    it("parks at once on nack 'park' and drops on nack 'skip'", async () => {
      const s = `${fresh()}-park`;
      await store.appendToStream(s, [ev('slice', { i: 1 }), ev('slice', { i: 2 }), ev('slice', { i: 3 })]);
      const sub = store.subscribeToGroup(s, 'workers', { ackTimeoutMs: 10_000 });
      const [e1] = await take(sub, 1);
      await sub.nack(e1!, 'park', 'malformed');
      const [e2] = await take(sub, 1);
      await sub.nack(e2!, 'skip', 'not ours');
      const [e3] = await take(sub, 1);
      expect(n(e3!)).toBe(3);
      await sub.ack(e3!);
      expect((await store.listParked(s, 'workers')).map((p) => [(p.event.data as { i: number }).i, p.reason])).toEqual([
        [1, 'malformed'],
      ]);
      await sub.unsubscribe();
    });

    it('gives an event nobody acked within ackTimeoutMs back to the group (capability redeliversToAnotherMember)', async () => {
      const s = `${fresh()}-timeout`;
      await store.appendToStream(s, [ev('slice', { i: 7 })]);
      const dead = store.subscribeToGroup(s, 'workers', { ackTimeoutMs: 300, maxRetryCount: 5 });
      const [held] = await take(dead, 1);
      expect(n(held!)).toBe(7);
      // `dead` never acks: a member that hangs while still connected.
      const alive = store.subscribeToGroup(s, 'workers', { ackTimeoutMs: 300, maxRetryCount: 5 });
      const started = Date.now();
      if (store.capabilities.redeliversToAnotherMember) {
        const [redelivered] = await take(alive, 1, 5000);
        expect(n(redelivered!)).toBe(7);
        expect(redelivered!.retryCount).toBe(1);
        expect(Date.now() - started).toBeGreaterThanOrEqual(200);
        await alive.ack(redelivered!);
      } else {
        // The event comes back after the timeout, to whichever member the store picks (perhaps the hung one).
        const redelivered = await Promise.any([
          take(dead, 1, 5000).then(([e]) => ({ e, sub: dead })),
          take(alive, 1, 5000).then(([e]) => ({ e, sub: alive })),
        ]);
        expect(n(redelivered.e!)).toBe(7);
        expect(redelivered.e!.retryCount).toBeGreaterThanOrEqual(1);
        expect(Date.now() - started).toBeGreaterThanOrEqual(200);
        await redelivered.sub.ack(redelivered.e!);
      }
      await alive.unsubscribe();
      await dead.unsubscribe();
    });

    it('keeps delivering events appended while members wait', async () => {
      const s = `${fresh()}-live`;
      const sub = store.subscribeToGroup(s, 'workers', { ackTimeoutMs: 10_000 });
      setTimeout(() => void store.appendToStream(s, [ev('slice', { i: 1 }), ev('slice', { i: 2 })]), 30);
      const got: number[] = [];
      for await (const e of sub) {
        got.push(n(e));
        await sub.ack(e);
        if (got.length === 2) break;
      }
      expect(got).toEqual([1, 2]);
      await sub.unsubscribe();
    });
  });
}
