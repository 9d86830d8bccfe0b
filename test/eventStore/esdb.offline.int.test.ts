/**
 * The EventStoreDB adapter without a server: it refuses bad input before any network call, and a server that
 * cannot be reached (a closed local port) gives StoreUnavailableError naming the connection, never a hang or a
 * client error type; subscriptions keep trying to restore themselves instead. This runs the adapter's real code paths; esdb.contract.int.test.ts needs a server.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type EventStore,
  openEventStore,
  StoreClosedError,
  StoreUnavailableError,
  ValidationError,
} from '../../src/index.js';
import { getEventStoreDBEventStore } from '../../src/eventStore/esdb/esdbEventStore.js';
import { collect } from './eventStore.contract.js';

/** A local port nobody listens on: connections are refused at once. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

const rejection = async (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );

describe('EventStoreDB adapter without a server', () => {
  let store: EventStore;
  let where: string;

  beforeAll(async () => {
    const port = await closedPort();
    where = `esdb://127.0.0.1:${port}?tls=false`;
    store = await openEventStore(`esdb://admin:s3cret@127.0.0.1:${port}?tls=false`);
  });
  afterAll(async () => {
    await store.close();
  });

  it('opens lazily, reports kind and capabilities, and keeps the password out of its URL', () => {
    expect(store.kind).toBe('esdb');
    expect(store.url).toBe(where);
    expect(store.capabilities).toEqual({
      idempotentWithAnyRevision: false,
      atomicCommit: false,
      uniqueEventIds: false,
      atomicAppendBytes: 1_048_576,
      redeliversToAnotherMember: false,
    });
  });

  it('takes the server append limit from maxAppendSize in the URL and refuses one the server would not start with', async () => {
    const other = await openEventStore(`esdb://127.0.0.1:1?tls=false&maxAppendSize=524288`);
    expect(other.capabilities.atomicAppendBytes).toBe(524_288);
    await other.close();
    for (const bad of ['0', '16777216', 'abc', '']) {
      await expect(openEventStore(`esdb://127.0.0.1:1?maxAppendSize=${bad}&tls=false`)).rejects.toThrow(
        /invalid maxAppendSize .* use bytes from 1 to 16767216/,
      );
    }
  });

  it('accepts kurrentdb:// URLs and refuses malformed ones with a ValidationError', async () => {
    const other = await openEventStore(`kurrentdb://127.0.0.1:1?tls=false`);
    expect(other.kind).toBe('esdb');
    await other.close();
    for (const bad of ['esdb://h:abc', 'esdb://h:2113?tls=maybe']) {
      await expect(openEventStore(bad)).rejects.toBeInstanceOf(ValidationError);
    }
  });

  it('refuses bad input before calling the server', async () => {
    await expect(store.appendToStream('$system', [{ type: 'A', data: {} }])).rejects.toBeInstanceOf(ValidationError);
    await expect(store.appendToStream('swf-checkpoint-x', [{ type: 'A', data: {} }])).rejects.toThrow(
      /reserved for checkpoints/,
    );
    await expect(store.appendToStream('run-1', [{ type: 'A', data: { n: 1n } }])).rejects.toThrow(/JSON/);
    await expect(
      store.appendToStream('run-1', [{ type: 'A', data: {} }], { expectedRevision: -1n }),
    ).rejects.toBeInstanceOf(ValidationError);
    await expect(
      store.commit([{ stream: 'run-1', events: [{ type: 'A', data: {} }] }], { name: 'agent', position: -5n }),
    ).rejects.toBeInstanceOf(ValidationError);
    await expect(store.checkpoints.set('agent', 5 as unknown as bigint)).rejects.toBeInstanceOf(ValidationError);
    expect(() => store.readStream('a b')).toThrow(ValidationError);
    expect(() => store.readAll({ from: -1n })).toThrow(ValidationError);
    expect(() => store.subscribeToGroup('q', 'workers', { ackTimeoutMs: 0 })).toThrow(ValidationError);
    expect(() => store.subscribeToGroup('q', 'bad group')).toThrow(ValidationError);
  });

  it('reports an unreachable server as StoreUnavailableError naming it, without credentials', async () => {
    const failures = [
      rejection(store.appendToStream('run-1', [{ type: 'A', data: {} }])),
      rejection(collect(store.readStream('run-1'))),
      rejection(collect(store.readAll({ filter: { streamPrefix: ['run-'] } }))),
      rejection(store.headPosition()),
      rejection(store.checkpoints.get('agent')),
      rejection(store.checkpoints.set('agent', 5n)),
      rejection(store.listParked('q', 'workers')),
      rejection(store.replayParked('q', 'workers')),
    ];
    for (const err of await Promise.all(failures)) {
      expect(err).toBeInstanceOf(StoreUnavailableError);
      expect((err as Error).message).toContain(where);
      expect((err as Error).message).not.toContain('s3cret');
    }
  });

  it('keeps resubscribing to a server it cannot reach, with growing waits and a log line each time', async () => {
    const lines: { fields: Record<string, unknown>; message: string }[] = [];
    const logger = { warn: (fields: object, message: string) => lines.push({ fields: { ...fields }, message }) };
    const other = getEventStoreDBEventStore({
      connectionString: where,
      logger,
      resubscribe: { initialDelayMs: 5, maxDelayMs: 40 },
    });
    try {
      const all = other.subscribeToAll({ filter: { eventTypePrefix: ['stf_'] } });
      const one = other.subscribeToStream('run-1', { from: 3n });
      const loops = [collect(all), collect(one)];
      await expect
        .poll(() => lines.filter((l) => l.fields.stream === 'run-1').length, { timeout: 10_000 })
        .toBeGreaterThanOrEqual(5);
      await expect.poll(() => lines.filter((l) => l.fields.stream === '$all').length).toBeGreaterThanOrEqual(5);
      const waits = lines.filter((l) => l.fields.stream === 'run-1').map((l) => l.fields.delayMs);
      expect(waits.slice(0, 5)).toEqual([5, 10, 20, 40, 40]);
      expect(lines[0]!.message).toMatch(/subscription dropped; resubscribing/);
      expect(String(lines[0]!.fields.err)).toContain(where);
      await all.unsubscribe();
      await one.unsubscribe();
      await expect(Promise.all(loops)).resolves.toEqual([[], []]);
      // A group that cannot even be created reports it: there is no group to reconnect to.
      await expect(collect(other.subscribeToGroup('q', 'workers'))).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      await other.close();
    }
  });

  it("does not hold an append back behind a subscription from 'end' that cannot start", async () => {
    const sub = store.subscribeToAll({ from: 'end' });
    const started = Date.now();
    await expect(store.appendToStream('run-1', [{ type: 'A', data: {} }])).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
    expect(Date.now() - started).toBeLessThan(4_000);
    await sub.unsubscribe();
  });

  it('ends iteration when unsubscribed, and unsubscribing twice is harmless', async () => {
    const sub = store.subscribeToAll({ from: 'end' });
    const loop = collect(sub);
    await sub.unsubscribe();
    await sub.unsubscribe();
    await expect(loop).resolves.toEqual([]);
  });

  it('ends live subscriptions on close, then refuses to work; closing twice is harmless', async () => {
    const other = await openEventStore(where);
    const all = collect(other.subscribeToAll({ from: 'end' }));
    const group = collect(other.subscribeToGroup('q', 'workers'));
    await other.close();
    await other.close();
    await expect(all).resolves.toEqual([]);
    await expect(group).resolves.toEqual([]);
    await expect(other.appendToStream('run-1', [{ type: 'A', data: {} }])).rejects.toBeInstanceOf(StoreClosedError);
    expect(() => other.subscribeToAll()).toThrow(StoreClosedError);
  });
});
