/**
 * A scratch PostgreSQL database per test file on the local server (127.0.0.1:5432, user postgres, trust auth as
 * `.ci/run` sets it up; PGHOST/PGPORT/PGUSER/PGPASSWORD override). `postgresSkipReason` says why the PostgreSQL
 * tests cannot run here; in CI (CI=true) a missing server is a failure, not a skip.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

const host = process.env.PGHOST ?? '127.0.0.1';
const port = process.env.PGPORT ?? '5432';
const user = process.env.PGUSER ?? 'postgres';
const password = process.env.PGPASSWORD;
const auth = password ? `${encodeURIComponent(user)}:${encodeURIComponent(password)}` : encodeURIComponent(user);
export const serverUrl = (database: string): string => `postgres://${auth}@${host}:${port}/${database}`;

const HOW_TO_RUN =
  'install PostgreSQL (`apt-get install postgresql`, then `pg_ctlcluster 15 main start`) with trust auth for ' +
  'local TCP connections, or point PGHOST/PGPORT/PGUSER/PGPASSWORD at a server';

async function probe(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: serverUrl('postgres'), connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (e: unknown) {
    return `no PostgreSQL server at ${host}:${port} (${e instanceof Error ? e.message : String(e)}); to run: ${HOW_TO_RUN}`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

const unreachable = await probe();
if (unreachable && process.env.CI) {
  throw new Error(`CI must run the PostgreSQL tests, but ${unreachable}`);
}
/** Why the PostgreSQL tests skip here, or undefined when a server answers. */
export const postgresSkipReason = unreachable;
if (unreachable) console.warn(`[swf-es] skipping PostgreSQL tests: ${unreachable}`);

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl('postgres') });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export interface ScratchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** Creates an empty database with a fresh name; `drop()` removes it, closing what is still connected. */
export async function scratchDatabase(label = 'test'): Promise<ScratchDatabase> {
  const name = `swf_${label.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  return {
    name,
    url: serverUrl(name),
    drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}
