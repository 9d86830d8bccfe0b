/**
 * Competing consumers on PostgreSQL. A group's delivery state lives in tables, so members in processes on
 * different hosts share it and it survives restarts:
 * - `swf_group_cursors`: the next revision of the stream not yet handed out, and the group's settings;
 * - `swf_group_deliveries`: events handed out and not yet acked (in flight with a lease deadline, waiting for a
 *   retry, or parked with a reason), with their retry count and the member that holds them.
 * A claim is one short transaction that takes its rows with `FOR UPDATE SKIP LOCKED`, so members never wait on
 * each other and never get the same event; no lock is held while a handler runs. Lease deadlines are on the
 * server's clock, so hosts with skewed clocks agree on when a lease has expired.
 */
import type pg from 'pg';
import type { GroupOptions, NackAction, ParkedEvent, StoredEvent } from '../eventStore.js';
import type { Delivery, GroupBackend } from '../shared/subscriptions.js';
import { EVENT_COLUMNS, type EventRow, rowToEvent } from './rows.js';

const E_COLUMNS = EVENT_COLUMNS.split(', ')
  .map((c) => (c.startsWith('(') ? c.replace('recorded_at', 'e.recorded_at') : `e.${c}`))
  .join(', ');

export interface GroupContext {
  /** Runs `fn` in a transaction on a pooled connection, translating errors. */
  tx<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T>;
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R[]>;
  queryArrays(text: string, values?: unknown[]): Promise<unknown[][]>;
  /** Tells other processes' members (LISTEN) that this group's state changed. */
  announce(stream: string): Promise<void>;
  track(p: Promise<unknown>): void;
}

export class PostgresGroup implements GroupBackend {
  private ready: Promise<{ ackTimeout: number }> | undefined;
  /** When the earliest lease ends, as of the last look (ms on this host's clock). */
  private nextDeadlineAt: number | undefined;

  constructor(
    private readonly ctx: GroupContext,
    private readonly stream: string,
    private readonly group: string,
    private readonly options: GroupOptions,
  ) {}

  /** The group's settings: stored by the first member that created it, shared by all. */
  private ensure(): Promise<{ ackTimeout: number }> {
    this.ready ??= (async () => {
      await this.ctx.query(
        `INSERT INTO swf_group_cursors (stream, grp, next_revision, max_retry_count, ack_timeout_ms)
         VALUES ($1, $2, CASE WHEN $3 THEN coalesce((SELECT revision + 1 FROM swf_streams WHERE stream = $1), 0) ELSE 0 END, $4, $5)
         ON CONFLICT (stream, grp) DO NOTHING`,
        [
          this.stream,
          this.group,
          this.options.from === 'end',
          this.options.maxRetryCount ?? 10,
          this.options.ackTimeoutMs ?? 30_000,
        ],
      );
      const rows = await this.ctx.query<{ ack_timeout_ms: number }>(
        `SELECT ack_timeout_ms FROM swf_group_cursors WHERE stream = $1 AND grp = $2`,
        [this.stream, this.group],
      );
      return { ackTimeout: rows[0]!.ack_timeout_ms };
    })();
    this.ready.catch(() => {
      this.ready = undefined;
    });
    return this.ready;
  }

  async claim(member: string, max: number): Promise<Delivery[]> {
    const { ackTimeout } = await this.ensure();
    const s = this.stream;
    const g = this.group;
    // Is there anything to do? One read, so idle members take no locks and open no transaction.
    const [work] = (await this.ctx.queryArrays(
      `SELECT EXISTS (SELECT 1 FROM swf_group_deliveries WHERE stream = $1 AND grp = $2 AND state = 'pending'),
              EXISTS (SELECT 1 FROM swf_group_deliveries WHERE stream = $1 AND grp = $2 AND state = 'inflight' AND deadline <= clock_timestamp()),
              coalesce((SELECT revision FROM swf_streams WHERE stream = $1) >= (SELECT next_revision FROM swf_group_cursors WHERE stream = $1 AND grp = $2), false),
              (SELECT extract(epoch FROM min(deadline) - clock_timestamp()) * 1000 FROM swf_group_deliveries WHERE stream = $1 AND grp = $2 AND state = 'inflight')::float8`,
      [s, g],
    )) as [[boolean, boolean, boolean, number | null]];
    const [pending, expired, fresh, nextIn] = work;
    this.nextDeadlineAt = nextIn === null ? undefined : Date.now() + nextIn;
    if (!pending && !expired && !fresh) return [];
    const lease = `clock_timestamp() + $4::int * interval '1 millisecond'`;
    const out = await this.ctx.tx(async (c) => {
      const got: Delivery[] = [];
      if (expired) {
        await c.query(
          `UPDATE swf_group_deliveries d
              SET retry_count = d.retry_count + 1, member = NULL, deadline = NULL,
                  state = CASE WHEN d.retry_count + 1 > k.max_retry_count THEN 'parked' ELSE 'pending' END,
                  reason = CASE WHEN d.retry_count + 1 > k.max_retry_count
                           THEN 'ack timeout: no ack after ' || k.max_retry_count || ' retries' ELSE d.reason END,
                  parked_at = CASE WHEN d.retry_count + 1 > k.max_retry_count THEN now() ELSE d.parked_at END
             FROM swf_group_cursors k,
                  (SELECT revision FROM swf_group_deliveries
                    WHERE stream = $1 AND grp = $2 AND state = 'inflight' AND deadline <= clock_timestamp()
                    FOR UPDATE SKIP LOCKED) x
            WHERE k.stream = $1 AND k.grp = $2 AND d.stream = $1 AND d.grp = $2 AND d.revision = x.revision`,
          [s, g],
        );
      }
      if (pending || expired) {
        const r = await c.query({
          text: `UPDATE swf_group_deliveries d SET state = 'inflight', member = $3, deadline = ${lease}
                   FROM (SELECT revision FROM swf_group_deliveries
                          WHERE stream = $1 AND grp = $2 AND state = 'pending'
                          ORDER BY revision LIMIT $5 FOR UPDATE SKIP LOCKED) x,
                        swf_events e
                  WHERE d.stream = $1 AND d.grp = $2 AND d.revision = x.revision
                    AND e.stream = d.stream AND e.revision = d.revision
              RETURNING ${E_COLUMNS}, d.retry_count`,
          values: [s, g, member, ackTimeout, max],
          rowMode: 'array',
        });
        const rows = (r.rows as [...EventRow, number][]).sort((a, b) => Number(a[3]) - Number(b[3]));
        for (const row of rows) got.push({ event: rowToEvent(row as unknown as EventRow), retryCount: row[8] });
      }
      if (got.length < max) {
        // The cursor row is the one place members contend: SKIP LOCKED lets a member that finds it taken go on
        // with what it has instead of waiting.
        const r = await c.query({
          text: `WITH cur AS (SELECT next_revision FROM swf_group_cursors WHERE stream = $1 AND grp = $2 FOR UPDATE SKIP LOCKED),
                      ev AS (SELECT ${E_COLUMNS} FROM swf_events e, cur
                              WHERE e.stream = $1 AND e.revision >= cur.next_revision ORDER BY e.revision LIMIT $5),
                      ins AS (INSERT INTO swf_group_deliveries (stream, grp, revision, retry_count, state, member, deadline)
                              SELECT $1, $2, revision, 0, 'inflight', $3, ${lease} FROM ev),
                      adv AS (UPDATE swf_group_cursors SET next_revision = (SELECT max(revision) + 1 FROM ev)
                               WHERE stream = $1 AND grp = $2 AND EXISTS (SELECT 1 FROM ev))
                 SELECT * FROM ev ORDER BY revision`,
          values: [s, g, member, ackTimeout, max - got.length],
          rowMode: 'array',
        });
        for (const row of r.rows as EventRow[]) got.push({ event: rowToEvent(row), retryCount: 0 });
      }
      return got;
    });
    if (out.length > 0 && this.nextDeadlineAt === undefined) this.nextDeadlineAt = Date.now() + ackTimeout;
    return out;
  }

  async ack(member: string, event: StoredEvent): Promise<void> {
    await this.ctx.query(
      `DELETE FROM swf_group_deliveries WHERE stream = $1 AND grp = $2 AND revision = $3 AND state = 'inflight' AND member = $4`,
      [this.stream, this.group, event.revision.toString(), member],
    );
  }

  async nack(member: string, event: StoredEvent, action: NackAction, reason: string): Promise<void> {
    const key = [this.stream, this.group, event.revision.toString(), member];
    if (action === 'skip') return this.ack(member, event);
    if (action === 'park') {
      await this.ctx.query(
        `UPDATE swf_group_deliveries SET state = 'parked', member = NULL, deadline = NULL, reason = $5, parked_at = now()
          WHERE stream = $1 AND grp = $2 AND revision = $3 AND state = 'inflight' AND member = $4`,
        [...key, reason],
      );
      return;
    }
    await this.ctx.query(
      `UPDATE swf_group_deliveries d
          SET retry_count = d.retry_count + 1, member = NULL, deadline = NULL,
              state = CASE WHEN d.retry_count + 1 > k.max_retry_count THEN 'parked' ELSE 'pending' END,
              reason = $5, parked_at = CASE WHEN d.retry_count + 1 > k.max_retry_count THEN now() ELSE NULL END
         FROM swf_group_cursors k
        WHERE k.stream = $1 AND k.grp = $2
          AND d.stream = $1 AND d.grp = $2 AND d.revision = $3 AND d.state = 'inflight' AND d.member = $4`,
      [...key, reason],
    );
    // A retry is work for any member, in any process.
    await this.ctx.announce(this.stream);
  }

  release(member: string): void {
    this.ctx.track(
      this.ctx
        .query(
          `UPDATE swf_group_deliveries SET state = 'pending', member = NULL, deadline = NULL
            WHERE stream = $1 AND grp = $2 AND state = 'inflight' AND member = $3`,
          [this.stream, this.group, member],
        )
        .then(() => this.ctx.announce(this.stream)),
    );
  }

  nextDeadlineIn(now: number): number | undefined {
    return this.nextDeadlineAt === undefined ? undefined : this.nextDeadlineAt - now;
  }

  async parked(): Promise<ParkedEvent[]> {
    const rows = await this.ctx.queryArrays(
      `SELECT ${E_COLUMNS}, d.reason, (extract(epoch FROM d.parked_at) * 1000)::int8
         FROM swf_group_deliveries d JOIN swf_events e ON e.stream = d.stream AND e.revision = d.revision
        WHERE d.stream = $1 AND d.grp = $2 AND d.state = 'parked' ORDER BY d.revision`,
      [this.stream, this.group],
    );
    return (rows as [...EventRow, string | null, string | null][]).map((r) => ({
      event: rowToEvent(r as unknown as EventRow),
      reason: r[8] ?? '',
      parkedAt: new Date(Number(r[9] ?? 0)),
    }));
  }

  async replay(): Promise<number> {
    const rows = await this.ctx.query(
      `UPDATE swf_group_deliveries SET state = 'pending', retry_count = 0, reason = NULL, parked_at = NULL
        WHERE stream = $1 AND grp = $2 AND state = 'parked' RETURNING revision`,
      [this.stream, this.group],
    );
    await this.ctx.announce(this.stream);
    return rows.length;
  }
}
