/**
 * A paged reader over a network store (the catch-up subscription is the shared one, `asyncCatchUpSubscription` in
 * ../shared/subscriptions.ts).
 */
import type { StoredEvent } from '../eventStore.js';

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
