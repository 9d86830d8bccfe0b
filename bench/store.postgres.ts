/**
 * The PostgreSQL column of `npm run bench:store`: the adapter beside plain `pg` running the same SQL (the adapter's
 * own statements, imported, on the adapter's schema), in the same run, on the local server. Each workload gets a
 * scratch database, dropped after; the 1,000,000-event read fixture is kept (database swf_bench_read_<N>).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { type EventStore, openEventStore } from '../src/index.js';
import { SESSION_OPTIONS, WRITE_SQL } from '../src/eventStore/postgres/postgresEventStore.js';
import { GROUP_SQL } from '../src/eventStore/postgres/postgresGroup.js';
import { EVENT_COLUMNS } from '../src/eventStore/postgres/rows.js';

export interface PgSizes {
  batchStreams: number;
  batchSize: number;
  singleAppends: number;
  singleStreams: number;
  readEvents: number;
  groupEvents: number;
}

type Payload = (i: number) => Record<string, unknown>;

export function pgBench(server: string, sizes: PgSizes, payload: Payload, meta: Record<string, unknown>) {
  const urlOf = (db: string): string => {
    const u = new URL(server);
    u.pathname = `/${db}`;
    return u.toString();
  };
  const admin = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
    const c = new pg.Client({ connectionString: server });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  };
  /** A fresh database with the adapter's schema (made by opening the adapter once). */
  const scratch = async (): Promise<{ url: string; drop: () => Promise<void> }> => {
    const name = `swf_bench_${randomBytes(4).toString('hex')}`;
    await admin((c) => c.query(`CREATE DATABASE ${name}`));
    const url = urlOf(name);
    await (await openEventStore(url)).close();
    return {
      url,
      drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
    };
  };

  /** The adapter's write, by hand: one call of its `swf_write` function (lock, append, head, notify, commit). */
  async function plainAppend(
    c: pg.Client,
    kind: 'no_stream' | 'exact',
    stream: string,
    expected: string | null,
    events: { type: string; data: unknown; metadata: unknown }[],
  ): Promise<void> {
    const r = await c.query({
      text: WRITE_SQL,
      values: [
        [stream],
        [kind],
        [expected],
        [events.length],
        events.map(() => randomUUID()),
        events.map((e) => e.type),
        events.map((e) => JSON.stringify(e.data)),
        events.map((e) => JSON.stringify(e.metadata)),
        [],
        [],
        'bench',
      ],
      rowMode: 'array',
    });
    if (r.rows.length !== 1) throw new Error('plain pg: unexpected result');
  }

  const batchEvents = (s: number) =>
    Array.from({ length: sizes.batchSize }, (_, i) => ({
      type: 'slice',
      data: payload(s * sizes.batchSize + i),
      metadata: meta,
    }));

  async function withScratch<T>(fn: (url: string) => Promise<T>): Promise<T> {
    const db = await scratch();
    try {
      return await fn(db.url);
    } finally {
      await db.drop();
    }
  }

  return {
    plainBatches: () =>
      withScratch(async (url) => {
        const c = new pg.Client({ connectionString: url, options: SESSION_OPTIONS });
        await c.connect();
        const t0 = performance.now();
        for (let s = 0; s < sizes.batchStreams; s++)
          await plainAppend(c, 'no_stream', `slices-${s}`, null, batchEvents(s));
        const secs = (performance.now() - t0) / 1000;
        await c.end();
        return (sizes.batchStreams * sizes.batchSize) / secs;
      }),
    adapterBatches: () =>
      withScratch(async (url) => {
        const store = await openEventStore(url);
        const t0 = performance.now();
        for (let s = 0; s < sizes.batchStreams; s++)
          await store.appendToStream(`slices-${s}`, batchEvents(s), { expectedRevision: 'no_stream' });
        const secs = (performance.now() - t0) / 1000;
        await store.close();
        return (sizes.batchStreams * sizes.batchSize) / secs;
      }),
    plainSingles: () =>
      withScratch(async (url) => {
        const c = new pg.Client({ connectionString: url, options: SESSION_OPTIONS });
        await c.connect();
        const revisions = new Array<number>(sizes.singleStreams).fill(-1);
        const t0 = performance.now();
        for (let i = 0; i < sizes.singleAppends; i++) {
          const s = i % sizes.singleStreams;
          const rev = revisions[s]!;
          await plainAppend(c, rev < 0 ? 'no_stream' : 'exact', `worker-${s}`, rev < 0 ? null : String(rev), [
            { type: 'slice', data: payload(i), metadata: meta },
          ]);
          revisions[s] = rev + 1;
        }
        const secs = (performance.now() - t0) / 1000;
        await c.end();
        return sizes.singleAppends / secs;
      }),
    adapterSingles: () =>
      withScratch(async (url) => {
        const store = await openEventStore(url);
        const revisions = new Array<bigint | 'no_stream'>(sizes.singleStreams).fill('no_stream');
        const t0 = performance.now();
        for (let i = 0; i < sizes.singleAppends; i++) {
          const s = i % sizes.singleStreams;
          const r = await store.appendToStream(`worker-${s}`, [{ type: 'slice', data: payload(i), metadata: meta }], {
            expectedRevision: revisions[s]!,
          });
          revisions[s] = r.nextRevision;
        }
        const secs = (performance.now() - t0) / 1000;
        await store.close();
        return sizes.singleAppends / secs;
      }),

    /** The read fixture, built once through the adapter and kept. */
    async readFixture(): Promise<string> {
      const name = `swf_bench_read_${sizes.readEvents}`;
      const url = urlOf(name);
      const exists = await admin(
        async (c) => (await c.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [name])).rowCount,
      );
      if (exists) {
        const store = await openEventStore(url);
        const head = await store.headPosition();
        await store.close();
        if (head === BigInt(sizes.readEvents)) return url;
        await admin((c) => c.query(`DROP DATABASE ${name} WITH (FORCE)`));
      }
      process.stderr.write(
        `building the ${sizes.readEvents.toLocaleString()}-event PostgreSQL read fixture once (database ${name}) ...\n`,
      );
      await admin((c) => c.query(`CREATE DATABASE ${name}`));
      const store = await openEventStore(url);
      for (let s = 0; s < sizes.readEvents / 1000; s++) {
        await store.appendToStream(
          `slices-${s}`,
          Array.from({ length: 1000 }, (_, i) => ({ type: 'slice', data: payload(s * 1000 + i), metadata: meta })),
        );
      }
      await store.close();
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query('VACUUM ANALYZE swf_events');
      await c.end();
      return url;
    },
    async plainRead(url: string): Promise<number> {
      const c = new pg.Client({ connectionString: url, options: SESSION_OPTIONS });
      await c.connect();
      const text = `SELECT ${EVENT_COLUMNS} FROM swf_events WHERE position >= $1 ORDER BY position LIMIT 2000`;
      const t0 = performance.now();
      let n = 0;
      let next = '0';
      let sink = 0;
      for (;;) {
        const rows = (await c.query({ text, values: [next], rowMode: 'array' })).rows as unknown[][];
        if (rows.length === 0) break;
        for (const r of rows) {
          sink +=
            (r[5] as { content: { start: number } }).content.start + (r[6] as { schemaVersion: number }).schemaVersion;
          BigInt(r[0] as string);
          n++;
        }
        next = String(BigInt(rows[rows.length - 1]![0] as string) + 1n);
      }
      const secs = (performance.now() - t0) / 1000;
      await c.end();
      if (n !== sizes.readEvents || sink < 0) throw new Error(`plain pg read ${n} events`);
      return n / secs;
    },
    async adapterRead(url: string): Promise<number> {
      const store = await openEventStore(url);
      const t0 = performance.now();
      let n = 0;
      let sink = 0;
      for await (const e of store.readAll()) {
        sink +=
          (e.data as { content: { start: number } }).content.start +
          (e.metadata as { schemaVersion: number }).schemaVersion;
        n++;
      }
      const secs = (performance.now() - t0) / 1000;
      await store.close();
      if (n !== sizes.readEvents || sink < 0) throw new Error(`adapter read ${n} events`);
      return n / secs;
    },

    /** 8 members (or `members`) acking one event at a time: the adapter, or the same statements by hand. */
    plainGroup: (members: number) =>
      withScratch(async (url) => {
        await fillQueue(url);
        const pool = new pg.Pool({
          connectionString: url,
          max: members,
          options: `${SESSION_OPTIONS} -c synchronous_commit=off`,
        });
        // An idle connection the server ends (a database dropped elsewhere) must not crash the bench: queries in
        // flight still reject with their own error.
        pool.on('error', (e) => console.error(`plain pg pool: ${e.message}`));
        await pool.query(
          `INSERT INTO swf_group_cursors (stream, grp, next_revision, max_retry_count, ack_timeout_ms) VALUES ('slices-1', 'workers', 0, 10, 60000)`,
        );
        let acked = 0;
        const t0 = performance.now();
        await Promise.all(
          Array.from({ length: members }, async (_, m) => {
            const member = `m${m}`;
            // The adapter's claim: the look (work) only when the last claim came up short, then one statement per
            // kind of row, each its own transaction; then the ack.
            let streaming = false;
            while (acked < sizes.groupEvents) {
              let pending = false;
              if (!streaming) {
                const [work] = (
                  await pool.query({ text: GROUP_SQL.work, values: ['slices-1', 'workers'], rowMode: 'array' })
                ).rows as [boolean, boolean, boolean, number | null][];
                if (!work![0] && !work![2]) {
                  await new Promise((r) => setTimeout(r, 1));
                  continue;
                }
                pending = work![0];
              }
              const got: string[] = [];
              if (pending) {
                const r = await pool.query({
                  text: GROUP_SQL.pending,
                  values: ['slices-1', 'workers', [member], 60000, 1],
                  rowMode: 'array',
                });
                for (const row of r.rows as unknown[][]) got.push(row[3] as string);
              }
              if (got.length === 0) {
                const r = await pool.query({
                  text: GROUP_SQL.fresh,
                  values: ['slices-1', 'workers', [member], 60000, 1],
                  rowMode: 'array',
                });
                for (const row of r.rows as unknown[][]) got.push(row[3] as string);
              }
              streaming = got.length === 1;
              for (const rev of got) {
                await pool.query(GROUP_SQL.ack, ['slices-1', 'workers', [rev], [member]]);
                acked++;
              }
            }
          }),
        );
        const secs = (performance.now() - t0) / 1000;
        await pool.end();
        return acked / secs;
      }),
    adapterGroup: (members: number) =>
      withScratch(async (url) => {
        await fillQueue(url);
        const store: EventStore = await openEventStore(url);
        let acked = 0;
        const subs = Array.from({ length: members }, () =>
          store.subscribeToGroup('slices-1', 'workers', { ackTimeoutMs: 60_000 }),
        );
        const t0 = performance.now();
        await Promise.all(
          subs.map(async (sub) => {
            for await (const e of sub) {
              await sub.ack(e);
              if (++acked >= sizes.groupEvents) await Promise.all(subs.map((s) => s.unsubscribe()));
            }
          }),
        );
        const secs = (performance.now() - t0) / 1000;
        await store.close();
        return acked / secs;
      }),
    scratch,
  };

  async function fillQueue(url: string): Promise<void> {
    const store = await openEventStore(url);
    for (let s = 0; s < sizes.groupEvents / 1000; s++) {
      await store.appendToStream(
        'slices-1',
        Array.from({ length: 1000 }, (_, i) => ({ type: 'slice', data: payload(s * 1000 + i) })),
      );
    }
    await store.close();
  }
}

/** Whether a server answers at `url` (the PostgreSQL column is left out, saying why, when none does). */
export async function pgReachable(url: string): Promise<string | undefined> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
    return undefined;
  } catch (e: unknown) {
    return e instanceof Error ? e.message : String(e);
  } finally {
    await c.end().catch(() => undefined);
  }
}
