/**
 * The read side as one object: the views database, the projector that keeps it up to date, and `ready()`, which
 * every reader awaits before answering so a query right after a run sees all of it.
 */
import { basename, dirname, extname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { EventStore } from '../eventStore/eventStore.js';
import { openViewsDb, type ViewsDb } from './db.js';
import { type CatchUpResult, Projector } from './runner.js';

export interface Views {
  readonly path: string;
  readonly db: ViewsDb;
  readonly projector: Projector;
  /** Catches up to the log's end. */
  ready(): Promise<CatchUpResult>;
  /** Follows the log live until `close()`. */
  follow(): void;
  close(): Promise<void>;
}

export interface OpenViewsOptions {
  /** `--views PATH`; default `defaultViewsPath(store.url, cwd)`. */
  path?: string;
  cwd?: string;
  logger?: Pick<Logger, 'warn' | 'info' | 'debug' | 'error'>;
  batchSize?: number;
  /** See `ProjectorOptions`. */
  bulkEvents?: number;
  writerThread?: boolean;
  maxCached?: number;
}

/**
 * Where the views live by default: beside a SQLite store's file as `<name>.views.db` (`swf.db` → `swf.views.db`);
 * for `memory:` and EventStoreDB, `./swf-data/views.db`.
 */
export function defaultViewsPath(storeUrl: string, cwd: string = process.cwd()): string {
  if (storeUrl.startsWith('sqlite:')) {
    const file = storeUrl.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (file === ':memory:') return ':memory:';
    const abs = resolve(cwd, file);
    const ext = extname(abs);
    return join(dirname(abs), `${basename(abs, ext)}.views.db`);
  }
  return resolve(cwd, 'swf-data', 'views.db');
}

export async function openViews(store: EventStore, options: OpenViewsOptions = {}): Promise<Views> {
  const cwd = options.cwd ?? process.cwd();
  const path =
    options.path !== undefined
      ? options.path === ':memory:'
        ? ':memory:'
        : resolve(cwd, options.path)
      : defaultViewsPath(store.url, cwd);
  const db = openViewsDb(path);
  let projector: Projector;
  try {
    projector = await Projector.open(store, db, {
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.batchSize ? { batchSize: options.batchSize } : {}),
      ...(options.bulkEvents !== undefined ? { bulkEvents: options.bulkEvents } : {}),
      ...(options.writerThread !== undefined ? { writerThread: options.writerThread } : {}),
      ...(options.maxCached !== undefined ? { maxCached: options.maxCached } : {}),
    });
  } catch (e: unknown) {
    db.close();
    throw e;
  }
  return {
    path: db.path,
    db,
    projector,
    ready: () => projector.catchUp(),
    follow: () => projector.follow(),
    async close() {
      await projector.stop();
      db.close();
    },
  };
}
