/**
 * The catch-up subscription (every adapter but EventStoreDB's) and competing-consumer drivers (the embedded
 * adapters, memory and SQLite).
 * An adapter supplies a page reader and a change notifier; the driver does the rest.
 */
import { isStoreUnavailableError } from '../../errors.js';
import type {
  EventFilter,
  GroupEvent,
  GroupSubscription,
  NackAction,
  StoredEvent,
  Subscription,
} from '../eventStore.js';

/** Which streams a waiter cares about; without one it wakes at every change. */
export type StreamInterest = (stream: string) => boolean;

const TOUCHED_LIMIT = 1000;

/** The interest of a subscription with this filter: its stream prefixes (a filter on types alone: any stream). */
export function streamInterest(filter: EventFilter | undefined): StreamInterest | undefined {
  const prefixes = filter?.streamPrefix;
  if (!prefixes || prefixes.length === 0) return undefined;
  return (stream) => prefixes.some((p) => stream.startsWith(p));
}

/**
 * Wakes waiters when the log may have changed (an append here, or one seen from another process). A notification
 * from an append here names the streams it touched, and wakes only the waiters interested in one of them: a
 * subscriber to the data agent's streams does not query the store after every commit of the workers.
 */
export class ChangeNotifier {
  private waiters = new Map<() => void, StreamInterest | undefined>();
  /** Counts notifications, so a waiter can tell that one happened while it was busy (and not wait for the next). */
  version = 0;
  private onFirstWaiter: (() => void) | undefined;
  private onNoWaiter: (() => void) | undefined;
  /** The version of each stream's latest append here (bounded: past the limit it starts again from `anyVersion`). */
  private readonly touched = new Map<string, number>();
  /** The version of the latest notification that named no streams. */
  private anyVersion = 0;

  /** Hooks for adapters that must poll for foreign changes only while someone waits. */
  setPollingHooks(start: () => void, stop: () => void): void {
    this.onFirstWaiter = start;
    this.onNoWaiter = stop;
  }

  get waiting(): number {
    return this.waiters.size;
  }

  /** Whether a notification that concerns `interest` (any, without one) came after version `since`. */
  changedSince(since: number, interest?: StreamInterest): boolean {
    if (since === this.version) return false;
    if (interest === undefined || this.anyVersion > since) return true;
    for (const [stream, version] of this.touched) if (version > since && interest(stream)) return true;
    return false;
  }

  /**
   * Resolves at the next notify() that concerns `interest` (any, without one), or after `timeoutMs`; at once if
   * any notification came after version `since`.
   */
  wait(timeoutMs?: number, since?: number, interest?: StreamInterest): Promise<void> {
    if (since !== undefined && this.changedSince(since, interest)) return Promise.resolve();
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        if (timer) clearTimeout(timer);
        this.waiters.delete(done);
        if (this.waiters.size === 0) this.onNoWaiter?.();
        resolve();
      };
      this.waiters.set(done, interest);
      if (this.waiters.size === 1) this.onFirstWaiter?.();
      if (timeoutMs !== undefined) timer = setTimeout(done, timeoutMs);
    });
  }

  /** Something changed: in `streams` (appends here), or anywhere (undefined: another process, a delivery state). */
  notify(streams?: ReadonlySet<string>): void {
    const version = ++this.version;
    if (streams === undefined) this.anyVersion = version;
    else {
      for (const s of streams) this.touched.set(s, version);
      if (this.touched.size > TOUCHED_LIMIT) {
        this.touched.clear();
        this.anyVersion = version;
      }
    }
    if (this.waiters.size === 0) return;
    for (const [w, interest] of [...this.waiters]) {
      if (streams === undefined || interest === undefined) w();
      else
        for (const s of streams)
          if (interest(s)) {
            w();
            break;
          }
    }
  }
}

/**
 * Reads the page after `cursor` (exclusive), at most `limit` events, already filtered. `scanned` is the cursor of
 * the last row looked at, which may be past the last returned event when the filter dropped rows.
 */
export type PageReader = (cursor: bigint, limit: number) => CatchUpPage;
/** The same over a network: the page comes later. */
export type AsyncPageReader = (cursor: bigint, limit: number) => Promise<CatchUpPage>;
export interface CatchUpPage {
  events: StoredEvent[];
  scanned: bigint;
}

const PAGE = 1000;
/** Backoff of a network store's subscription while the store cannot be reached. */
const RETRY_MS = [50, 100, 250, 500, 1000, 2000];

type Reader =
  | { sync: true; start: bigint; readPage: PageReader }
  | { sync: false; start: () => Promise<bigint>; readPage: AsyncPageReader };

/**
 * The catch-up loop: delivers the events after the start cursor (exclusive), then stays live, woken by the
 * notifier. With a synchronous reader (memory, SQLite) `drain` reads on; with an asynchronous one (PostgreSQL)
 * the start cursor is asked for at the first read, `drain` gives only what is buffered, and a store that cannot be
 * reached (a restart, a cut link) delays delivery with a backoff and misses nothing, because the loop reads from
 * its cursor.
 */
function catchUp(
  reader: Reader,
  notifier: ChangeNotifier,
  cursorOf: (e: StoredEvent) => bigint,
  interest: StreamInterest | undefined,
): Subscription {
  let closed = false;
  let wake: (() => void) | undefined;
  let cursor = reader.sync ? reader.start : undefined;
  let buffer: StoredEvent[] = [];
  let index = 0;
  let failures = 0;
  const end: IteratorReturnResult<undefined> = { value: undefined, done: true };

  /** The notifier's version when the store last had nothing new for us: no need to ask again until it moves. */
  let emptyAt: number | undefined;
  const worthReading = (): boolean => emptyAt === undefined || notifier.changedSince(emptyAt, interest);
  /** Takes a page read at notifier version `version` into the buffer; false when it had nothing new. */
  const take = (page: CatchUpPage, from: bigint, version: number): boolean => {
    cursor = page.scanned > from ? page.scanned : from;
    if (page.events.length === 0) {
      emptyAt = version;
      return false;
    }
    emptyAt = undefined;
    buffer = page.events;
    index = 0;
    const last = cursorOf(buffer[buffer.length - 1]!);
    if (last > cursor) cursor = last;
    return true;
  };
  /** Fills the buffer from the store; false when there is nothing new. */
  const fillSync = (read: PageReader): boolean => {
    if (!worthReading()) return false;
    const version = notifier.version;
    return take(read(cursor!, PAGE), cursor!, version);
  };
  const fillAsync = async (r: Extract<Reader, { sync: false }>): Promise<boolean> => {
    if (!worthReading()) return false;
    const version = notifier.version;
    const from = (cursor ??= await r.start());
    return take(await r.readPage(from, PAGE), from, version);
  };
  /** One read; an unreachable network store is a pause (false after the backoff), anything else an error. */
  const fill = async (): Promise<boolean> => {
    if (reader.sync) return fillSync(reader.readPage);
    try {
      const got = await fillAsync(reader);
      failures = 0;
      return got;
    } catch (e: unknown) {
      if (!isStoreUnavailableError(e) || closed) throw e;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, RETRY_MS[Math.min(failures++, RETRY_MS.length - 1)]);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
      return true; // look again at once
    }
  };

  const iterator: AsyncIterator<StoredEvent> = {
    async next(): Promise<IteratorResult<StoredEvent>> {
      while (!closed) {
        if (index < buffer.length) return { value: buffer[index++]!, done: false };
        if (reader.sync ? fillSync(reader.readPage) : await fill()) continue;
        if (closed) break;
        await new Promise<void>((resolve) => {
          wake = resolve;
          void notifier.wait(undefined, emptyAt, interest).then(resolve);
        });
        wake = undefined;
      }
      return end;
    },
    async return(): Promise<IteratorResult<StoredEvent>> {
      closed = true;
      wake?.();
      return end;
    },
  };

  return {
    [Symbol.asyncIterator]() {
      return iterator;
    },
    drain(max: number): StoredEvent[] {
      const out: StoredEvent[] = [];
      while (!closed && out.length < max) {
        if (index < buffer.length) {
          const take = Math.min(buffer.length - index, max - out.length);
          for (let i = 0; i < take; i++) out.push(buffer[index++]!);
          continue;
        }
        // A whole page (one statement for every call); what is not taken stays buffered. A network read cannot be
        // synchronous: only what is already buffered.
        if (!reader.sync || !fillSync(reader.readPage)) break;
      }
      return out;
    },
    async unsubscribe() {
      closed = true;
      wake?.();
      notifier.notify();
    },
  };
}

/** A catch-up subscription over a synchronous page reader (memory, SQLite). */
export function catchUpSubscription(
  startCursor: bigint,
  readPage: PageReader,
  notifier: ChangeNotifier,
  cursorOf: (e: StoredEvent) => bigint,
  /** The streams this subscription reads (undefined: any), so appends elsewhere do not wake it. */
  interest?: StreamInterest,
): Subscription {
  return catchUp({ sync: true, start: startCursor, readPage }, notifier, cursorOf, interest);
}

/** A catch-up subscription over a network store's reader; `start` gives the start cursor at the first read. */
export function asyncCatchUpSubscription(
  start: () => Promise<bigint>,
  readPage: AsyncPageReader,
  notifier: ChangeNotifier,
  cursorOf: (e: StoredEvent) => bigint,
  interest?: StreamInterest,
): Subscription {
  return catchUp({ sync: false, start, readPage }, notifier, cursorOf, interest);
}

// ---- competing consumers -------------------------------------------------------------------------

export interface Delivery {
  event: StoredEvent;
  retryCount: number;
}

/** The delivery state of one group; memory and SQLite each implement it with the same semantics. */
export interface GroupBackend {
  /** Expires overdue deliveries, then hands up to `max` events to `member` with a deadline. */
  claim(member: string, max: number, nowMs: number): Delivery[] | Promise<Delivery[]>;
  ack(member: string, event: StoredEvent): void | Promise<void>;
  nack(member: string, event: StoredEvent, action: NackAction, reason: string, nowMs: number): void | Promise<void>;
  /** Gives back every delivery this member holds (a clean unsubscribe). */
  release(member: string): void;
  /** Milliseconds until the earliest in-flight deadline (or undefined): when to look for expired deliveries. */
  nextDeadlineIn(nowMs: number): number | undefined;
}

export function groupSubscription(
  backend: GroupBackend,
  member: string,
  bufferSize: number,
  notifier: ChangeNotifier,
  now: () => number = Date.now,
  /** The group's stream: appends elsewhere do not wake an idle member. */
  interest?: StreamInterest,
): GroupSubscription {
  let closed = false;
  let inFlight = 0;
  let wake: (() => void) | undefined;
  const signal = (): void => wake?.();
  const iterator = async function* (): AsyncGenerator<GroupEvent> {
    while (!closed) {
      const room = bufferSize - inFlight;
      const seen = notifier.version;
      const batch = room > 0 ? await backend.claim(member, room, now()) : [];
      if (batch.length > 0) {
        inFlight += batch.length;
        for (const d of batch) {
          if (closed) return;
          yield { ...d.event, retryCount: d.retryCount };
        }
        continue;
      }
      const next = backend.nextDeadlineIn(now());
      const timeout = Math.max(5, Math.min(next ?? 1000, 1000));
      await new Promise<void>((resolve) => {
        wake = resolve;
        void notifier.wait(timeout, seen, interest).then(resolve);
      });
      wake = undefined;
    }
  };
  let started: AsyncGenerator<GroupEvent> | undefined;
  return {
    [Symbol.asyncIterator]() {
      started ??= iterator();
      return started;
    },
    async ack(event) {
      // The room is free at once, so the next claim can ride in the same commit as this ack.
      inFlight = Math.max(0, inFlight - 1);
      signal();
      await backend.ack(member, event);
    },
    async nack(event, action, reason) {
      await backend.nack(member, event, action, reason, now());
      inFlight = Math.max(0, inFlight - 1);
      notifier.notify();
      signal();
    },
    async unsubscribe() {
      if (closed) return;
      closed = true;
      backend.release(member);
      notifier.notify();
      signal();
      await started?.return(undefined);
    },
  };
}

/**
 * A finite async iterable over pages of events. Cheaper per event than an async generator, which matters when
 * a reader folds a million events.
 */
export function pagedEvents(fetchPage: () => StoredEvent[]): AsyncIterable<StoredEvent> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<StoredEvent> {
      let buf: StoredEvent[] = [];
      let i = 0;
      let done = false;
      const end: IteratorReturnResult<undefined> = { value: undefined, done: true };
      return {
        next(): Promise<IteratorResult<StoredEvent>> {
          if (i < buf.length) return Promise.resolve({ value: buf[i++]!, done: false });
          if (done) return Promise.resolve(end);
          try {
            buf = fetchPage();
          } catch (e: unknown) {
            done = true;
            return Promise.reject(e instanceof Error ? e : new Error(String(e)));
          }
          i = 0;
          if (buf.length === 0) {
            done = true;
            return Promise.resolve(end);
          }
          return Promise.resolve({ value: buf[i++]!, done: false });
        },
        return(): Promise<IteratorResult<StoredEvent>> {
          done = true;
          buf = [];
          return Promise.resolve(end);
        },
      };
    },
  };
}
