/** The in-memory store: the same contract as SQLite, nothing persisted. For tests and scratch runs. */
import { randomUUID } from 'node:crypto';
import { ConcurrencyError } from '../../errors.js';
import {
  type AppendResult,
  type Checkpoint,
  type CommitResult,
  type EventStore,
  type GroupOptions,
  type NackAction,
  type NewEvent,
  type ParkedEvent,
  type ReadAllOptions,
  type ReadStreamOptions,
  type StoredEvent,
  type StreamAppend,
  StreamNotFoundError,
  type SubscribeToAllOptions,
  type SubscribeToStreamOptions,
  StoreClosedError,
} from '../eventStore.js';
import {
  ChangeNotifier,
  catchUpSubscription,
  type Delivery,
  type GroupBackend,
  groupSubscription,
  streamInterest,
} from '../shared/subscriptions.js';
import { expectedRevisionConflict, repeatedAppend, repeatedCommit } from '../shared/appendRules.js';
import {
  assertGroupName,
  assertReadFrom,
  assertStreamName,
  matchesFilter,
  maxCountOf,
  type PreparedAppend,
  prepareAppend,
  prepareAppends,
} from '../validation.js';

interface Row {
  event: StoredEvent;
  data: string;
  metadata: string;
}

const freeze = (row: Row): StoredEvent => ({
  ...row.event,
  data: JSON.parse(row.data) as unknown,
  metadata: JSON.parse(row.metadata) as unknown,
});

export function getInMemoryEventStore(options: { url?: string } = {}): EventStore {
  const log: Row[] = [];
  const streams = new Map<string, Row[]>();
  const byId = new Map<string, Row>();
  const checkpoints = new Map<string, bigint>();
  const notifier = new ChangeNotifier();
  const groups = new Map<string, MemoryGroup>();
  let closed = false;

  const ensureOpen = (): void => {
    if (closed) throw new StoreClosedError('memory:');
  };

  const storedAt = (id: string): StoredEvent | undefined => byId.get(id)?.event;

  /** Appends after the repeat rule found none of the ids stored (the one case left: ids shared within a commit). */
  function appendPrepared({ stream, events, expected }: PreparedAppend): AppendResult {
    const existing = streams.get(stream);
    const conflict = expectedRevisionConflict(stream, expected, existing ? existing.length - 1 : -1);
    if (conflict) throw conflict;
    for (const e of events) {
      if (byId.has(e.id)) throw new ConcurrencyError(`event id ${e.id} is already stored`);
    }
    const rows = existing ?? [];
    if (!existing) streams.set(stream, rows);
    const now = new Date();
    let last: Row | undefined;
    for (const e of events) {
      const row: Row = {
        event: {
          id: e.id,
          type: e.type,
          data: undefined,
          metadata: undefined,
          streamName: stream,
          revision: BigInt(rows.length),
          position: BigInt(log.length + 1),
          recordedAt: now,
        },
        data: e.data,
        metadata: e.metadata,
      };
      rows.push(row);
      log.push(row);
      byId.set(e.id, row);
      last = row;
    }
    return { nextRevision: last!.event.revision, position: last!.event.position };
  }

  const store: EventStore = {
    kind: 'memory',
    url: options.url ?? 'memory:',
    capabilities: {
      idempotentWithAnyRevision: true,
      atomicCommit: true,
      uniqueEventIds: true,
      redeliversToAnotherMember: true,
    },

    async appendToStream(stream: string, events: readonly NewEvent[], opts = {}) {
      ensureOpen();
      const append = prepareAppend(stream, events, opts.expectedRevision);
      const again = repeatedAppend(append, storedAt);
      if (again) return again;
      const result = appendPrepared(append);
      notifier.notify(new Set([stream]));
      return result;
    },

    async commit(appends: readonly StreamAppend[], checkpoint?: Checkpoint): Promise<CommitResult> {
      ensureOpen();
      const prepared = prepareAppends(appends);
      const again = repeatedCommit(prepared, storedAt);
      if (again) {
        if (checkpoint) checkpoints.set(checkpoint.name, checkpoint.position);
        return { appends: again };
      }
      // All or nothing: remember the lengths and undo on failure.
      const logLength = log.length;
      // Only the streams this commit touches can change (copying every stream's length was O(log) per commit).
      const streamLengths = new Map(prepared.map((p) => [p.stream, streams.get(p.stream)?.length] as const));
      try {
        const results = prepared.map(appendPrepared);
        if (checkpoint) checkpoints.set(checkpoint.name, checkpoint.position);
        if (results.length > 0) notifier.notify(new Set(prepared.map((p) => p.stream)));
        return { appends: results };
      } catch (e: unknown) {
        for (const row of log.splice(logLength)) byId.delete(row.event.id);
        for (const [k, n] of streamLengths) {
          if (n === undefined) streams.delete(k);
          else streams.get(k)!.length = n;
        }
        throw e;
      }
    },

    readStream(stream: string, opts: ReadStreamOptions = {}) {
      assertStreamName(stream);
      assertReadFrom(opts.from, 'from revision');
      const max = maxCountOf(opts.maxCount);
      const backwards = opts.direction === 'backwards';
      return (async function* () {
        ensureOpen();
        const rows = streams.get(stream);
        if (!rows) throw new StreamNotFoundError(stream);
        const from = opts.from ?? (backwards ? 'end' : 'start');
        let i = from === 'start' ? 0 : from === 'end' ? rows.length - 1 : Number(from);
        if (!backwards && from === 'end') i = rows.length;
        let n = 0;
        while (n < max && i >= 0 && i < rows.length) {
          yield freeze(rows[i]!);
          n++;
          i += backwards ? -1 : 1;
        }
      })();
    },

    readAll(opts: ReadAllOptions = {}) {
      assertReadFrom(opts.from, 'from position');
      const max = maxCountOf(opts.maxCount);
      const backwards = opts.direction === 'backwards';
      return (async function* () {
        ensureOpen();
        const from = opts.from ?? (backwards ? 'end' : 'start');
        // position p is at index p-1
        let i = from === 'start' ? 0 : from === 'end' ? (backwards ? log.length - 1 : log.length) : Number(from) - 1;
        if (backwards && i > log.length - 1) i = log.length - 1;
        if (!backwards && i < 0) i = 0;
        let n = 0;
        while (n < max && i >= 0 && i < log.length) {
          const row = log[i]!;
          if (matchesFilter(opts.filter, row.event.streamName, row.event.type)) {
            yield freeze(row);
            n++;
          }
          i += backwards ? -1 : 1;
        }
      })();
    },

    async headPosition() {
      return log.length === 0 ? undefined : BigInt(log.length);
    },

    subscribeToAll(opts: SubscribeToAllOptions = {}) {
      assertReadFrom(opts.from, 'from position');
      const from = opts.from ?? 'start';
      const start = from === 'start' ? 0n : from === 'end' ? BigInt(log.length) : from;
      return catchUpSubscription(
        start,
        (cursor, limit) => {
          const events: StoredEvent[] = [];
          let i = Number(cursor);
          for (; i < log.length && events.length < limit; i++) {
            const row = log[i]!;
            if (matchesFilter(opts.filter, row.event.streamName, row.event.type)) events.push(freeze(row));
          }
          return { events, scanned: BigInt(i) };
        },
        notifier,
        (e) => e.position,
        streamInterest(opts.filter),
      );
    },

    subscribeToStream(stream: string, opts: SubscribeToStreamOptions = {}) {
      assertStreamName(stream);
      assertReadFrom(opts.from, 'from revision');
      const from = opts.from ?? 'start';
      // cursor = number of events of the stream already seen
      const start = from === 'start' ? 0n : from === 'end' ? BigInt(streams.get(stream)?.length ?? 0) : from + 1n;
      return catchUpSubscription(
        start,
        (cursor, limit) => {
          const rows = streams.get(stream) ?? [];
          const events = rows.slice(Number(cursor), Number(cursor) + limit).map(freeze);
          return { events, scanned: cursor };
        },
        notifier,
        (e) => e.revision + 1n,
        (s) => s === stream,
      );
    },

    subscribeToGroup(stream: string, group: string, opts: GroupOptions = {}) {
      ensureOpen();
      assertStreamName(stream);
      assertGroupName(group);
      const key = `${stream}\u0000${group}`;
      let g = groups.get(key);
      if (!g) {
        g = new MemoryGroup(() => streams.get(stream) ?? [], opts);
        groups.set(key, g);
      }
      if (opts.member !== undefined) g.release(opts.member);
      return groupSubscription(
        g,
        opts.member ?? randomUUID(),
        opts.bufferSize ?? 1,
        notifier,
        Date.now,
        (s) => s === stream,
      );
    },

    async listParked(stream: string, group: string): Promise<ParkedEvent[]> {
      const g = groups.get(`${stream}\u0000${group}`);
      return g ? g.parkedEvents() : [];
    },

    async replayParked(stream: string, group: string) {
      const g = groups.get(`${stream}\u0000${group}`);
      const n = g ? g.replay() : 0;
      if (n > 0) notifier.notify();
      return n;
    },

    checkpoints: {
      async get(name) {
        return checkpoints.get(name);
      },
      async set(name, position) {
        checkpoints.set(name, position);
      },
    },

    async close() {
      closed = true;
      notifier.notify();
    },
  };
  return store;
}

interface MemoryDelivery {
  row: Row;
  retryCount: number;
  state: 'pending' | 'inflight' | 'parked';
  member?: string;
  deadline?: number;
  reason?: string;
  parkedAt?: Date;
}

class MemoryGroup implements GroupBackend {
  private cursor: number;
  private readonly deliveries = new Map<bigint, MemoryDelivery>();
  private readonly maxRetry: number;
  private readonly ackTimeout: number;

  constructor(
    private readonly rows: () => Row[],
    opts: GroupOptions,
  ) {
    this.maxRetry = opts.maxRetryCount ?? 10;
    this.ackTimeout = opts.ackTimeoutMs ?? 30_000;
    this.cursor = opts.from === 'end' ? rows().length : 0;
  }

  private retryOrPark(d: MemoryDelivery, reason: string, now: number): void {
    d.member = undefined;
    d.deadline = undefined;
    d.retryCount++;
    if (d.retryCount > this.maxRetry) {
      d.state = 'parked';
      d.reason = reason;
      d.parkedAt = new Date(now);
    } else d.state = 'pending';
  }

  claim(member: string, max: number, now: number): Delivery[] {
    for (const d of this.deliveries.values()) {
      if (d.state === 'inflight' && d.deadline! <= now) this.retryOrPark(d, 'ack timeout', now);
    }
    const out: Delivery[] = [];
    const pending = [...this.deliveries.entries()]
      .filter(([, d]) => d.state === 'pending')
      .sort(([a], [b]) => (a < b ? -1 : 1));
    for (const [, d] of pending) {
      if (out.length >= max) break;
      d.state = 'inflight';
      d.member = member;
      d.deadline = now + this.ackTimeout;
      out.push({ event: freeze(d.row), retryCount: d.retryCount });
    }
    const rows = this.rows();
    while (out.length < max && this.cursor < rows.length) {
      const row = rows[this.cursor++]!;
      const d: MemoryDelivery = { row, retryCount: 0, state: 'inflight', member, deadline: now + this.ackTimeout };
      this.deliveries.set(row.event.revision, d);
      out.push({ event: freeze(row), retryCount: 0 });
    }
    return out;
  }

  private held(member: string, event: StoredEvent): MemoryDelivery | undefined {
    const d = this.deliveries.get(event.revision);
    return d && d.state === 'inflight' && d.member === member ? d : undefined;
  }

  ack(member: string, event: StoredEvent): void {
    if (this.held(member, event)) this.deliveries.delete(event.revision);
  }

  nack(member: string, event: StoredEvent, action: NackAction, reason: string, now: number): void {
    const d = this.held(member, event);
    if (!d) return;
    if (action === 'skip') this.deliveries.delete(event.revision);
    else if (action === 'park') {
      d.state = 'parked';
      d.member = undefined;
      d.reason = reason;
      d.parkedAt = new Date(now);
    } else this.retryOrPark(d, reason, now);
  }

  release(member: string): void {
    for (const d of this.deliveries.values()) {
      if (d.state === 'inflight' && d.member === member) {
        d.state = 'pending';
        d.member = undefined;
      }
    }
  }

  nextDeadlineIn(now: number): number | undefined {
    let min: number | undefined;
    for (const d of this.deliveries.values())
      if (d.state === 'inflight') min = Math.min(min ?? Infinity, d.deadline! - now);
    return min;
  }

  parkedEvents(): ParkedEvent[] {
    return [...this.deliveries.values()]
      .filter((d) => d.state === 'parked')
      .map((d) => ({ event: freeze(d.row), reason: d.reason ?? '', parkedAt: d.parkedAt! }));
  }

  replay(): number {
    let n = 0;
    for (const d of this.deliveries.values()) {
      if (d.state === 'parked') {
        d.state = 'pending';
        d.retryCount = 0;
        n++;
      }
    }
    return n;
  }
}
