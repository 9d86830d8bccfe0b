import { ValidationError } from '../errors.js';
import type { EventStore } from './eventStore.js';

export const DEFAULT_STORE_URL = 'sqlite:./swf-data/swf.db';

export interface OpenOptions {
  /** How long a writer waits for another process's lock before StoreLockedError. Default 5 000 ms. */
  busyTimeoutMs?: number;
  /** Refuse a `sqlite:` path with no store yet (StoreUnavailableError) instead of creating one. */
  mustExist?: boolean;
  /**
   * Commits that acknowledge something to the outside world (a broker frame, a REST 2xx) must survive a power cut,
   * not only a killed process: SQLite then runs with `synchronous = FULL` (an fsync per commit; group commit keeps
   * the cost small). Other adapters are durable on commit already.
   */
  durable?: boolean;
  /** Where a store reports what it recovers from by itself (EventStoreDB: a dropped subscription it restores). */
  logger?: { warn(fields: object, message: string): void };
}

/**
 * Opens a store from its URL: `memory:`, `sqlite:<path>` (default `sqlite:./swf-data/swf.db`) or
 * `postgres://user@host:5432/database` (also `postgresql://`) or `esdb://host:2113?tls=false` (also
 * `esdb+discover://`, `kurrentdb://`).
 */
export async function openEventStore(url: string = DEFAULT_STORE_URL, options: OpenOptions = {}): Promise<EventStore> {
  if (typeof url !== 'string' || url.length === 0) throw new ValidationError('store URL is empty', { field: 'store' });
  if (url === 'memory:' || url.startsWith('memory:')) {
    const { getInMemoryEventStore } = await import('./inMemory/inMemoryEventStore.js');
    return getInMemoryEventStore({ url });
  }
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (path.length === 0)
      throw new ValidationError(`store URL '${url}' has no file path (use sqlite:./swf-data/swf.db)`, {
        field: 'store',
      });
    // SQLite's own URI forms would be taken as a file name (a folder literally named `file:`, a `?mode=ro` file).
    if (/^file:/i.test(path) || path.includes('?'))
      throw new ValidationError(
        `store URL '${url}': sqlite: takes a plain file path; URI forms (file:…, ?mode=…, ?cache=…) are not supported`,
        { field: 'store' },
      );
    const { getSQLiteEventStore } = await import('./sqlite/sqliteEventStore.js');
    return getSQLiteEventStore({ path, url, ...options });
  }
  if (/^(esdb|esdb\+discover|kurrentdb|kurrentdb\+discover|kurrent|kurrent\+discover):\/\//.test(url)) {
    const { getEventStoreDBEventStore } = await import('./esdb/esdbEventStore.js');
    return getEventStoreDBEventStore({ connectionString: url, logger: options.logger });
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    const { getPostgresEventStore } = await import('./postgres/postgresEventStore.js');
    return getPostgresEventStore({ url, busyTimeoutMs: options.busyTimeoutMs, mustExist: options.mustExist });
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1];
  throw new ValidationError(
    `unknown store URL scheme ${scheme ? `'${scheme}:'` : `in '${url}'`}: use memory:, sqlite:<path>, postgres://host/database or esdb://host:2113?tls=false`,
    { field: 'store' },
  );
}
