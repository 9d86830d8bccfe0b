/** Bad stores: each gets a typed error naming the problem, and nothing already stored changes. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it, vi } from 'vitest';
import {
  openEventStore,
  StoreCorruptError,
  StoreLockedError,
  StoreUnavailableError,
  ValidationError,
} from '../../src/index.js';
import { collect } from './eventStore.contract.js';

const dir = (): string => mkdtempSync(join(tmpdir(), 'swf-err-'));

describe('opening and using a bad store', () => {
  it('names an unknown URL scheme', async () => {
    const err = await openEventStore('mysql://localhost/db').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as Error).message).toMatch(/unknown store URL scheme 'mysql:'/);
    await expect(openEventStore('sqlite:')).rejects.toBeInstanceOf(ValidationError);
  });

  it('refuses a file that is not a database and leaves it as it was', async () => {
    const file = join(dir(), 'notes.txt');
    const text = 'these are my notes, not a database\n'.repeat(200);
    writeFileSync(file, text);
    const err = await openEventStore(`sqlite:${file}`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreCorruptError);
    expect((err as Error).message).toContain(file);
    expect(readFileSync(file, 'utf8')).toBe(text);
  });

  it('refuses a SQLite database that is not a swf-es store, without touching it', async () => {
    const file = join(dir(), 'other.db');
    const other = new Database(file);
    other.exec(
      `CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers (name) VALUES ('Ada')`,
    );
    other.close();
    const err = await openEventStore(`sqlite:${file}`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreCorruptError);
    expect((err as Error).message).toMatch(/not a swf-es store/);
    const check = new Database(file, { readonly: true });
    expect(check.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).pluck().all()).toEqual(['customers']);
    check.close();
  });

  it('reports a path it cannot create', async () => {
    const blocker = join(dir(), 'a-file');
    writeFileSync(blocker, 'not a folder');
    const err = await openEventStore(`sqlite:${join(blocker, 'sub', 'swf.db')}`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect((err as Error).message).toContain(blocker);
  });

  it('raises StoreLockedError when another writer holds the lock past the timeout, and loses nothing', async () => {
    const file = join(dir(), 'swf.db');
    const store = await openEventStore(`sqlite:${file}`, { busyTimeoutMs: 100 });
    await store.appendToStream('run-1', [{ type: 'A', data: { i: 0 } }]);
    const blocker = new Database(file);
    blocker.exec('BEGIN IMMEDIATE');
    const started = Date.now();
    const err = await store.appendToStream('run-1', [{ type: 'A', data: { i: 1 } }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreLockedError);
    expect((err as Error).message).toMatch(/locked/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    blocker.exec('ROLLBACK');
    blocker.close();
    await store.appendToStream('run-1', [{ type: 'A', data: { i: 2 } }]);
    expect((await collect(store.readStream('run-1'))).map((e) => (e.data as { i: number }).i)).toEqual([0, 2]);
    await store.close();
  });

  it('creates the folder of a new store', async () => {
    const file = join(dir(), 'a', 'b', 'swf.db');
    const store = await openEventStore(`sqlite:${file}`);
    await store.appendToStream('x', [{ type: 'A', data: {} }]);
    await store.close();
    expect(readFileSync(file).subarray(0, 15).toString()).toBe('SQLite format 3');
  });
});

describe('durability', () => {
  it('a durable store fsyncs every commit (synchronous = FULL); the default is NORMAL', async () => {
    const { getSQLiteEventStore } = await import('../../src/eventStore/sqlite/sqliteEventStore.js');
    // synchronous is a per-connection setting, so watch what the store's own connection is told.
    const pragma = vi.spyOn(Database.prototype, 'pragma');
    let seen: string[];
    try {
      await getSQLiteEventStore({ path: join(dir(), 'a.db'), durable: true }).close();
      await getSQLiteEventStore({ path: join(dir(), 'b.db') }).close();
      seen = pragma.mock.calls.map((c) => c[0]).filter((s) => s.startsWith('synchronous'));
    } finally {
      pragma.mockRestore();
    }
    expect(seen).toEqual(['synchronous = FULL', 'synchronous = NORMAL']);
  });
});
