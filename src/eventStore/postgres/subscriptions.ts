/**
 * Async counterparts of the shared drivers (whose page readers are synchronous, as SQLite's are): a catch-up
 * subscription and a paged reader over a network store.
 */
import type { StoredEvent, Subscription } from '../eventStore.js';
import type { ChangeNotifier, StreamInterest } from '../shared/subscriptions.js';
import { isStoreUnavailableError } from '../../errors.js';

export type AsyncPageReader = (cursor: bigint, limit: number) => Promise<{ events: StoredEvent[]; scanned: bigint }>;

const PAGE = 1000;
const RETRY_MS = [50, 100, 250, 500, 1000, 2000];

/**
 * Delivers the events after `start()` (exclusive), then stays live, woken by the notifier. A store that cannot be
 * reached (a restart, a cut link) delays delivery: the subscription tries again with a backoff and misses nothing,
 * because it reads from its cursor.
 */
export function asyncCatchUpSubscription(
  start: () => Promise<bigint>,
  readPage: AsyncPageReader,
  notifier: ChangeNotifier,
  cursorOf: (e: StoredEvent) => bigint,
  interest?: StreamInterest,
): Subscription {
  let closed = false;
  let wake: (() => void) | undefined;
  let cursor: bigint | undefined;
  let buffer: StoredEvent[] = [];
  let index = 0;
  let emptyAt: number | undefined;
  let failures = 0;
  const end: IteratorReturnResult<undefined> = { value: undefined, done: true };

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  /** Fills the buffer; false when there is nothing new. */
  const fill = async (): Promise<boolean> => {
    if (emptyAt !== undefined && !notifier.changedSince(emptyAt, interest)) return false;
    const version = notifier.version;
    cursor ??= await start();
    const page = await readPage(cursor, PAGE);
    if (page.scanned > cursor) cursor = page.scanned;
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

  const iterator: AsyncIterator<StoredEvent> = {
    async next(): Promise<IteratorResult<StoredEvent>> {
      while (!closed) {
        if (index < buffer.length) return { value: buffer[index++]!, done: false };
        let got: boolean;
        try {
          got = await fill();
          failures = 0;
        } catch (e: unknown) {
          if (!isStoreUnavailableError(e) || closed) throw e;
          await sleep(RETRY_MS[Math.min(failures++, RETRY_MS.length - 1)]!);
          continue;
        }
        if (got || closed) continue;
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
    /** Only what is already buffered: a network read cannot be synchronous. */
    drain(max: number): StoredEvent[] {
      const take = Math.min(buffer.length - index, max);
      const out = closed ? [] : buffer.slice(index, index + take);
      index += out.length;
      return out;
    },
    async unsubscribe() {
      closed = true;
      wake?.();
      notifier.notify();
    },
  };
}

export interface Page {
  events: StoredEvent[];
  /** No page after this one. */
  last: boolean;
}

/**
 * A finite async iterable over pages. The next page is fetched while the current one is consumed, so the
 * server's work overlaps the caller's.
 */
export function asyncPagedEvents(fetchPage: () => Promise<Page>): AsyncIterable<StoredEvent> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<StoredEvent> {
      let buf: StoredEvent[] = [];
      let i = 0;
      let done = false;
      let ahead: Promise<Page> | undefined;
      const end: IteratorReturnResult<undefined> = { value: undefined, done: true };
      const fetchAhead = (): void => {
        const p = fetchPage();
        // Handled when awaited; this only keeps an abandoned prefetch from being an unhandled rejection.
        p.catch(() => undefined);
        ahead = p;
      };
      const refill = async (): Promise<IteratorResult<StoredEvent>> => {
        for (;;) {
          if (i < buf.length) return { value: buf[i++]!, done: false };
          if (done) return end;
          if (!ahead) fetchAhead();
          let page: Page;
          try {
            page = await ahead!;
          } catch (e: unknown) {
            done = true;
            throw e;
          }
          ahead = undefined;
          buf = page.events;
          i = 0;
          if (page.last) done = true;
          else fetchAhead();
        }
      };
      return {
        // Not an async function: an event already fetched costs one resolved promise, not an async frame.
        next(): Promise<IteratorResult<StoredEvent>> {
          if (i < buf.length) return Promise.resolve({ value: buf[i++]!, done: false });
          return refill();
        },
        async return(): Promise<IteratorResult<StoredEvent>> {
          done = true;
          buf = [];
          return end;
        },
      };
    },
  };
}
