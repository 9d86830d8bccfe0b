/**
 * How the EventStoreDB adapter's subscriptions survive a dropped connection, through their seams: fake client
 * subscriptions (object-mode streams) that fail with the client's own error classes, as a restarted server makes
 * the real ones fail. The real client against a closed port is in esdb.offline.int.test.ts.
 */
import { PassThrough } from 'node:stream';
import { AccessDeniedError, UnavailableError } from '@eventstore/db-client';
import { describe, expect, it } from 'vitest';
import { StoreUnavailableError, type StoredEvent } from '../../src/index.js';
import { planGroup, type ClientResolvedEvent } from '../../src/eventStore/esdb/mapping.js';
import {
  CatchUpSubscription,
  EsdbGroupSubscription,
  type GroupClient,
  backoffDelay,
} from '../../src/eventStore/esdb/subscriptions.js';

const ctx = { connection: 'esdb://db:2113?tls=false' };

const resolved = (position: bigint, revision = position): ClientResolvedEvent & { retryCount: number } => ({
  event: {
    streamId: 'run-1',
    id: `00000000-0000-4000-8000-${position.toString().padStart(12, '0')}`,
    revision,
    type: 'stf_gen',
    created: new Date(0),
    isJson: true,
    data: { n: Number(position) },
    metadata: {},
    position: { commit: position, prepare: position },
  },
  retryCount: 0,
});

class FakeSource extends PassThrough {
  cancelled = false;
  acked: string[] = [];
  constructor() {
    super({ objectMode: true });
  }
  async unsubscribe(): Promise<void> {
    this.cancelled = true;
  }
  async ack(...events: ClientResolvedEvent[]): Promise<void> {
    this.acked.push(...events.map((e) => e.event!.id));
  }
  async nack(): Promise<void> {}
}

const capture = () => {
  const lines: { fields: Record<string, unknown>; message: string }[] = [];
  return {
    lines,
    logger: { warn: (fields: object, message: string) => lines.push({ fields: { ...fields }, message }) },
  };
};

function catchUp(sources: FakeSource[], logger?: ReturnType<typeof capture>['logger']) {
  const opened: (bigint | undefined)[] = [];
  const sub = new CatchUpSubscription<bigint>(
    (after) => {
      opened.push(after);
      const next = sources.shift();
      if (!next) throw new Error('no more sources');
      return next;
    },
    (r, after) => {
      const p = r.event!.position!.commit;
      return after === undefined || p > after
        ? ({ position: p, revision: r.event!.revision, id: r.event!.id } as StoredEvent)
        : undefined;
    },
    (e) => e.position,
    ctx,
    () => undefined,
    { initialDelayMs: 1, maxDelayMs: 4, logger },
  );
  return { sub, opened };
}

async function takeN(it: AsyncIterable<StoredEvent>, n: number): Promise<bigint[]> {
  const got: bigint[] = [];
  for await (const e of it) {
    got.push(e.position);
    if (got.length === n) break;
  }
  return got;
}

describe('EventStoreDB subscriptions after a dropped connection', () => {
  it('doubles the wait per failed attempt up to the maximum', () => {
    const policy = { initialDelayMs: 250, maxDelayMs: 10_000 };
    expect([1, 2, 3, 4, 5, 6, 7, 50].map((a) => backoffDelay(a, policy))).toEqual([
      250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000,
    ]);
  });

  it('resubscribes from the last delivered event after an unavailable server, and logs it', async () => {
    const first = new FakeSource();
    const second = new FakeSource();
    const { lines, logger } = capture();
    const { sub, opened } = catchUp([first, second], logger);
    first.write(resolved(10n));
    first.write(resolved(20n));
    setImmediate(() => first.emit('error', new UnavailableError(undefined, '14 UNAVAILABLE: Connection dropped')));
    const got = takeN(sub, 4);
    await expect.poll(() => opened.length).toBe(2);
    second.write(resolved(20n)); // the server starts after the position: a repeat would be dropped anyway
    second.write(resolved(30n));
    second.write(resolved(40n));
    await expect(got).resolves.toEqual([10n, 20n, 30n, 40n]);
    expect(opened).toEqual([undefined, 20n]);
    expect(first.cancelled).toBe(true);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.message).toMatch(/resubscribing from the last delivered event/);
    expect(lines[0]!.fields).toMatchObject({ attempt: 1, delayMs: 1, after: '20' });
    expect(String(lines[0]!.fields.err)).toContain('esdb://db:2113');
    await sub.unsubscribe();
    expect(second.cancelled).toBe(true);
  });

  it('resubscribes when the server ends the call without an error', async () => {
    const first = new FakeSource();
    const second = new FakeSource();
    const { sub, opened } = catchUp([first, second]);
    first.write(resolved(5n));
    first.end();
    second.write(resolved(6n));
    await expect(takeN(sub, 2)).resolves.toEqual([5n, 6n]);
    expect(opened).toEqual([undefined, 5n]);
    await sub.unsubscribe();
  });

  it('keeps an error that arrives before iteration starts, and retries after it', async () => {
    const first = new FakeSource();
    const second = new FakeSource();
    const { sub, opened } = catchUp([first, second]);
    first.emit('error', new UnavailableError(undefined, '14 UNAVAILABLE: No connection established'));
    second.write(resolved(1n));
    await expect(takeN(sub, 1)).resolves.toEqual([1n]);
    expect(opened).toEqual([undefined, undefined]);
    await sub.unsubscribe();
  });

  it('ends with the translated error, without retrying, when retrying cannot help', async () => {
    const first = new FakeSource();
    const { sub, opened } = catchUp([first]);
    setImmediate(() => first.emit('error', new AccessDeniedError(undefined, 'Access denied')));
    await expect(takeN(sub, 1)).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(opened).toHaveLength(1);
  });

  it('stops retrying when unsubscribed during the wait', async () => {
    const first = new FakeSource();
    const sub = new CatchUpSubscription<bigint>(
      () => first,
      () => undefined,
      (e) => e.position,
      ctx,
      () => undefined,
      { initialDelayMs: 60_000, maxDelayMs: 60_000 },
    );
    const loop = takeN(sub, 1);
    first.emit('error', new UnavailableError(undefined, '14 UNAVAILABLE'));
    await expect.poll(() => first.cancelled).toBe(true);
    await sub.unsubscribe();
    await expect(loop).resolves.toEqual([]);
  });

  it('reconnects a group member after a dropped connection; the server re-offers what it held', async () => {
    const first = new FakeSource();
    const second = new FakeSource();
    const sources = [first, second];
    let connects = 0;
    const client = {
      createPersistentSubscriptionToStream: () => Promise.resolve(),
      getPersistentSubscriptionToStreamInfo: () => Promise.reject(new Error('unused')),
      subscribeToPersistentSubscriptionToStream: () => {
        connects++;
        return sources.shift();
      },
    } as unknown as GroupClient;
    const { lines, logger } = capture();
    const member = new EsdbGroupSubscription(
      client,
      'run-1-queue',
      'workers',
      planGroup(),
      ctx,
      () => undefined,
      () => Promise.reject(new Error('no links here')),
      {
        initialDelayMs: 1,
        maxDelayMs: 4,
        logger,
      },
    );
    first.write(resolved(1n));
    const got: bigint[] = [];
    for await (const e of member) {
      got.push(e.position);
      if (got.length === 1) {
        first.emit('error', new UnavailableError(undefined, '14 UNAVAILABLE: Connection dropped'));
        // The ack cannot reach the server on a dropped call: logged, not thrown; the server offers the event again.
        await member.ack(e);
        expect(first.acked).toEqual([]);
        expect(lines.at(-1)!.message).toMatch(/ack or nack not delivered/);
        second.write({ ...resolved(1n), retryCount: 1 });
      } else {
        await member.ack(e);
        break;
      }
    }
    expect(got).toEqual([1n, 1n]);
    expect(connects).toBe(2);
    expect(first.cancelled).toBe(true);
    expect(second.acked).toEqual([resolved(1n).event!.id]);
    const drop = lines.find((l) => /group subscription dropped; reconnecting/.test(l.message));
    expect(drop!.fields).toMatchObject({ stream: 'run-1-queue', group: 'workers', attempt: 1 });
  });

  it('delivers a replayed parked event at its original position, read from its stream', async () => {
    const source = new FakeSource();
    const client = {
      createPersistentSubscriptionToStream: () => Promise.resolve(),
      getPersistentSubscriptionToStreamInfo: () => Promise.reject(new Error('unused')),
      subscribeToPersistentSubscriptionToStream: () => source,
    } as unknown as GroupClient;
    const lookups: [string, bigint][] = [];
    const member = new EsdbGroupSubscription(
      client,
      'run-1',
      'workers',
      planGroup(),
      ctx,
      () => undefined,
      (stream, revision) => {
        lookups.push([stream, revision]);
        return Promise.resolve(10n);
      },
    );
    const original = resolved(10n, 0n);
    // As the server sends it after replayParked: the parked link, and the event carrying the link's position.
    source.write({
      event: { ...original.event!, position: { commit: 9000n, prepare: 9000n } },
      link: { ...original.event!, streamId: '$persistentsubscription-run-1::workers-parked', type: '$>' },
      retryCount: 0,
    });
    expect(await takeN(member, 1)).toEqual([10n]);
    expect(lookups).toEqual([['run-1', 0n]]);
    await member.unsubscribe();
  });
});
