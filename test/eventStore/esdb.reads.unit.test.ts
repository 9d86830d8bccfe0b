/**
 * The EventStoreDB adapter's `$all` reads and `close()`, through its client seam: a stand-in client whose reads
 * and subscriptions are object-mode streams shaped like the client's (events, `caughtUp`, checkpoints). What a
 * real server does here is cited in docs/eventstoredb.md; this checks what the adapter makes of it.
 */
import { PassThrough } from 'node:stream';
import type { Filter } from '@eventstore/db-client';
import { describe, expect, it } from 'vitest';
import { AccessDeniedError } from '@eventstore/db-client';
import { IllegalStateError, StoreUnavailableError, type StoredEvent } from '../../src/index.js';
import { type EsdbClient, getEventStoreDBEventStore } from '../../src/eventStore/esdb/esdbEventStore.js';
import type { ClientResolvedEvent } from '../../src/eventStore/esdb/mapping.js';

const record = (position: bigint, streamId = 'run-1', type = 'stf_gen'): ClientResolvedEvent => ({
  event: {
    streamId,
    id: `00000000-0000-4000-8000-${position.toString().padStart(12, '0')}`,
    revision: position,
    type,
    created: new Date(0),
    isJson: true,
    data: { p: Number(position) },
    metadata: {},
    position: { commit: position, prepare: position },
  },
});

class FakeCall extends PassThrough {
  cancelled = false;
  constructor(items: ClientResolvedEvent[] = [], end = true) {
    super({ objectMode: true });
    for (const i of items) this.write(i);
    if (end) this.end();
  }
  async cancel(): Promise<void> {
    this.cancelled = true;
  }
  async unsubscribe(): Promise<void> {
    this.cancelled = true;
  }
}

interface Calls {
  readAll: unknown[];
  subscribeToAll: { fromPosition: unknown; filter?: Filter }[];
}

function fakeClient(parts: {
  head?: ClientResolvedEvent;
  subscription?: (opts: { fromPosition: unknown; filter?: Filter }) => FakeCall;
  readAll?: (opts: unknown) => FakeCall;
}): { client: EsdbClient; calls: Calls } {
  const calls: Calls = { readAll: [], subscribeToAll: [] };
  const client = {
    readAll: (opts: { direction?: string; fromPosition?: unknown }) => {
      calls.readAll.push(opts);
      if (parts.readAll) return parts.readAll(opts);
      return new FakeCall(parts.head ? [parts.head] : []);
    },
    subscribeToAll: (opts: { fromPosition: unknown; filter?: Filter }) => {
      calls.subscribeToAll.push(opts);
      return parts.subscription!(opts);
    },
    dispose: () => Promise.resolve(),
  } as unknown as EsdbClient;
  return { client, calls };
}

const open = (client: EsdbClient) =>
  getEventStoreDBEventStore({ connectionString: 'esdb://db:2113?tls=false' }, client);

async function positions(it: AsyncIterable<StoredEvent>): Promise<bigint[]> {
  const out: bigint[] = [];
  for await (const e of it) out.push(e.position);
  return out;
}

describe('EventStoreDB filtered $all reads', () => {
  it('reads forwards through a server-filtered subscription up to the head, then cancels it', async () => {
    let sub: FakeCall | undefined;
    const { client, calls } = fakeClient({
      head: record(500n, '$stats-127.0.0.1:2113', '$statsCollected'),
      subscription: () => {
        sub = new FakeCall([record(100n), record(200n, 'run-1', 'slice_result')], false);
        // The server's CaughtUp follows the last historical event; a live event after the head is not the read's.
        setImmediate(() => {
          sub!.emit('caughtUp');
          sub!.write(record(600n));
        });
        return sub;
      },
    });
    const store = open(client);
    expect(await positions(store.readAll({ filter: { eventTypePrefix: ['stf_'] } }))).toEqual([100n]);
    expect(calls.subscribeToAll).toHaveLength(1);
    const filter = calls.subscribeToAll[0]!.filter as Filter & { prefixes?: string[] };
    expect(filter).toMatchObject({ filterOn: 'eventType', prefixes: ['stf_'] });
    expect(sub!.cancelled).toBe(true);
    await store.close();
  });

  it('ends on the server caughtUp when the last events before the head are filtered out', async () => {
    const { client } = fakeClient({
      head: record(700n, '$et-stf_gen', '$>'),
      subscription: () => {
        const call = new FakeCall([record(100n), record(200n)], false);
        setImmediate(() => call.emit('caughtUp'));
        return call;
      },
    });
    const store = open(client);
    expect(await positions(store.readAll())).toEqual([100n, 200n]);
    await store.close();
  });

  it('without a filter still asks the server to leave out system events', async () => {
    const { client, calls } = fakeClient({
      head: record(300n),
      subscription: () => new FakeCall([record(100n), record(300n)], false),
    });
    const store = open(client);
    expect(await positions(store.readAll())).toEqual([100n, 300n]);
    expect(calls.subscribeToAll[0]!.filter).toMatchObject({ filterOn: 'eventType', regex: '^[^$].*' });
    await store.close();
  });

  it('stops on a server checkpoint at or after the head when nothing more matches', async () => {
    const { client } = fakeClient({
      head: record(900n, '$projections-$all', '$ProjectionUpdated'),
      subscription: (opts) => {
        const call = new FakeCall([record(100n)], false);
        setImmediate(() => void opts.filter!.checkpointReached!(call as never, { commit: 900n, prepare: 900n }));
        return call;
      },
    });
    const store = open(client);
    expect(await positions(store.readAll())).toEqual([100n]);
    await store.close();
  });

  it('reads nothing from an empty log, and forwards from a position includes the event there', async () => {
    const empty = fakeClient({ subscription: () => new FakeCall([], false) });
    const store = open(empty.client);
    expect(await positions(store.readAll())).toEqual([]);
    expect(empty.calls.subscribeToAll).toHaveLength(0);
    await store.close();

    const { client, calls } = fakeClient({
      readAll: (opts) =>
        new FakeCall((opts as { direction: string }).direction === 'backwards' ? [record(400n)] : [record(200n)]),
      subscription: () => new FakeCall([record(300n), record(400n)], false),
    });
    const from = open(client);
    expect(await positions(from.readAll({ from: 200n, maxCount: 2 }))).toEqual([200n, 300n]);
    expect(calls.subscribeToAll[0]!.fromPosition).toEqual({ commit: 200n, prepare: 200n });
    await from.close();
  });
});

describe('EventStoreDB reads cut off by close()', () => {
  it('fails a stream read in progress with IllegalStateError instead of returning what it had', async () => {
    const call = new FakeCall([record(1n), record(2n)], false); // the server is still sending
    const client = {
      readStream: () => call,
      dispose: () => Promise.resolve(), // the real client cancels the call, which it reports as no error
    } as unknown as EsdbClient;
    const store = open(client);
    const read = store.readStream('run-1')[Symbol.asyncIterator]();
    expect((await read.next()).value).toMatchObject({ position: 1n });
    await store.close();
    await expect(read.next()).rejects.toThrow(IllegalStateError);
    await expect(read.next()).resolves.toMatchObject({ done: true });
  });

  it('fails a filtered $all read waiting for the server with IllegalStateError', async () => {
    const { client } = fakeClient({ head: record(900n), subscription: () => new FakeCall([record(100n)], false) });
    const store = open(client);
    const read = store.readAll()[Symbol.asyncIterator]();
    expect((await read.next()).value).toMatchObject({ position: 100n });
    const waiting = read.next();
    await store.close();
    await expect(waiting).rejects.toThrow(/was closed during a read/);
  });

  it('reports a read the server cut short (closed without its end) instead of returning part of it', async () => {
    const call = new FakeCall([record(1n)], false);
    const store = open({ readStream: () => call, dispose: () => Promise.resolve() } as unknown as EsdbClient);
    const read = store.readStream('run-1')[Symbol.asyncIterator]();
    await read.next();
    call.destroy();
    await expect(read.next()).rejects.toBeInstanceOf(StoreUnavailableError);
    await store.close();
  });

  it('keeps an error a subscription gets before anyone iterates it: the later for-await fails, it does not hang', async () => {
    const call = new FakeCall([], false);
    const { client } = fakeClient({ subscription: () => call });
    const store = open(client);
    const sub = store.subscribeToAll({ from: 'start' });
    call.emit('error', new AccessDeniedError(undefined, 'Access denied'));
    await new Promise((resolve) => setImmediate(resolve));
    await expect(positions(sub)).rejects.toThrow(/denied access/);
    await store.close();
  });
});
