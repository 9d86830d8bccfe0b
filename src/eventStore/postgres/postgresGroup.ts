/**
 * Competing consumers on PostgreSQL. A group's delivery state lives in tables, so members in processes on
 * different hosts share it and it survives restarts:
 * - `swf_group_cursors`: the next revision of the stream not yet handed out, and the group's settings;
 * - `swf_group_deliveries`: events handed out and not yet acked (in flight with a lease deadline, waiting for a
 *   retry, or parked with a reason), with their retry count and the member that holds them.
 * A claim is a few single statements: retries are taken with `FOR UPDATE SKIP LOCKED`, new events by advancing the
 * group's cursor row (members queue on it for one statement); no two members get the same event, and no lock is
 * held while a handler runs. The members of one process that claim (or ack) in the same turn of the event loop
 * share one claim's (one ack's) statements. Lease deadlines are on the
 * server's clock, so hosts with skewed clocks agree on when a lease has expired.
 */
import type pg from 'pg';
import type { GroupOptions, NackAction, ParkedEvent, StoredEvent } from '../eventStore.js';
import type { Delivery, GroupBackend } from '../shared/subscriptions.js';
import { EVENT_COLUMNS, type EventRow, rowToEvent } from './rows.js';

const E_COLUMNS = EVENT_COLUMNS.split(', ')
  .map((c) => (c.startsWith('(') ? c.replace('recorded_at', 'e.recorded_at') : `e.${c}`))
  .join(', ');

/** How often a member that is streaming fresh events still looks for retries and expired leases. */
const LOOK_EVERY_MS = 1000;

const LEASE = `clock_timestamp() + $4::int * interval '1 millisecond'`;

/**
 * The statements of a claim and an ack ($1 stream, $2 group; claims: $3 member, $4 ack timeout in ms, $5 how
 * many). Exported so that the benchmark's plain-pg side runs exactly the same SQL.
 */
export const GROUP_SQL = {
  // `fresh` reads the cursor as a scalar subquery, so that it bounds the index scan of the stream's events (as a
  // join, the planner scanned the stream from revision 0 and filtered: 80,000 rows and 240 ms per claim late in a
  // 1,000-STF run). It waits for the cursor row (FOR UPDATE, not SKIP LOCKED): a member that skipped it would come back
  // empty-handed while events are there, and sleep until the next notification. The wait lasts one statement.
  /** Is there anything to do (pending, expired, fresh), and when does the earliest lease end? */
  work: `SELECT EXISTS (SELECT 1 FROM swf_group_deliveries WHERE stream = $1 AND grp = $2 AND state = 'pending'),
              EXISTS (SELECT 1 FROM swf_group_deliveries WHERE stream = $1 AND grp = $2 AND state = 'inflight' AND deadline <= clock_timestamp()),
              coalesce((SELECT revision FROM swf_streams WHERE stream = $1) >= (SELECT next_revision FROM swf_group_cursors WHERE stream = $1 AND grp = $2), false),
              (SELECT extract(epoch FROM min(deadline) - clock_timestamp()) * 1000 FROM swf_group_deliveries WHERE stream = $1 AND grp = $2 AND state = 'inflight')::float8`,
  expire: `UPDATE swf_group_deliveries d
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
  // Claims serve every member of this process that asks in the same turn: $3 is one slot per event wanted, the
  // member's name in each (a member asking for n events has n slots); the k-th event goes to the k-th slot.
  pending: `WITH x AS (SELECT revision FROM swf_group_deliveries
                        WHERE stream = $1 AND grp = $2 AND state = 'pending'
                        ORDER BY revision LIMIT $5 FOR UPDATE SKIP LOCKED),
                 y AS (SELECT revision, row_number() OVER (ORDER BY revision) AS k FROM x)
            UPDATE swf_group_deliveries d SET state = 'inflight', member = ($3::text[])[y.k], deadline = ${LEASE}
              FROM y, swf_events e
             WHERE d.stream = $1 AND d.grp = $2 AND d.revision = y.revision
               AND e.stream = d.stream AND e.revision = d.revision
         RETURNING ${E_COLUMNS}, d.retry_count, d.member`,
  fresh: `WITH cur AS (SELECT next_revision FROM swf_group_cursors WHERE stream = $1 AND grp = $2 FOR UPDATE),
                      ev AS (SELECT ${E_COLUMNS}, row_number() OVER (ORDER BY e.revision) AS k FROM swf_events e
                              WHERE e.stream = $1 AND e.revision >= (SELECT next_revision FROM cur)
                              ORDER BY e.revision LIMIT $5),
                      ins AS (INSERT INTO swf_group_deliveries (stream, grp, revision, retry_count, state, member, deadline)
                              SELECT $1, $2, revision, 0, 'inflight', ($3::text[])[k], ${LEASE} FROM ev),
                      adv AS (UPDATE swf_group_cursors SET next_revision = (SELECT max(revision) + 1 FROM ev)
                               WHERE stream = $1 AND grp = $2 AND EXISTS (SELECT 1 FROM ev))
                 SELECT *, ($3::text[])[k] FROM ev ORDER BY revision`,
  /** The acks of one turn ($3 revisions, $4 the members that hold them). */
  ack: `DELETE FROM swf_group_deliveries d USING unnest($3::int8[], $4::text[]) AS a(revision, member)
         WHERE d.stream = $1 AND d.grp = $2 AND d.revision = a.revision AND d.state = 'inflight' AND d.member = a.member`,
};

/**
 * Gathers the calls of one turn of the event loop into one batch, run by `run`; one batch at a time, and calls
 * that arrive while one runs form the next. `run` answers each item in order.
 */
class Coalescer<I, O> {
  private items: { item: I; resolve: (o: O) => void; reject: (e: unknown) => void }[] = [];
  private running = false;
  private scheduled = false;

  constructor(private readonly run: (items: I[]) => Promise<O[]>) {}

  add(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.items.push({ item, resolve, reject });
      if (!this.running && !this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          void this.next();
        });
      }
    });
  }

  private async next(): Promise<void> {
    if (this.running || this.items.length === 0) return;
    this.running = true;
    const batch = this.items;
    this.items = [];
    try {
      const out = await this.run(batch.map((b) => b.item));
      batch.forEach((b, i) => b.resolve(out[i]!));
    } catch (e: unknown) {
      for (const b of batch) b.reject(e);
    } finally {
      this.running = false;
    }
    void this.next();
  }
}

export interface GroupContext {
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
  /** The last claim got all it asked for: the next one skips the look at retries and leases. */
  private streaming = false;
  private lastLook = 0;

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

  private readonly claims = new Coalescer<{ member: string; max: number }, Delivery[]>((asks) => this.claimAll(asks));
  private readonly acks = new Coalescer<{ member: string; revision: bigint }, void>(async (acks) => {
    await this.ctx.query(GROUP_SQL.ack, [
      this.stream,
      this.group,
      acks.map((a) => a.revision.toString()),
      acks.map((a) => a.member),
    ]);
    return acks.map(() => undefined);
  });

  /** The members of this process that claim in the same turn share the statements of one claim. */
  claim(member: string, max: number): Promise<Delivery[]> {
    return this.claims.add({ member, max });
  }

  private async claimAll(asks: { member: string; max: number }[]): Promise<Delivery[][]> {
    const { ackTimeout } = await this.ensure();
    const s = this.stream;
    const g = this.group;
    const got = new Map<string, Delivery[]>(asks.map((a) => [a.member, []]));
    const answer = (): Delivery[][] => asks.map((a) => got.get(a.member)!);
    /** One slot per event still wanted, named by the member that wants it. */
    const slots = (): string[] => asks.flatMap((a) => Array<string>(a.max - got.get(a.member)!.length).fill(a.member));
    const wanted = slots().length;
    const now = Date.now();
    let pending = false;
    let expired = false;
    // Members that got all they asked for last time go straight for the next fresh events (one statement); they
    // look at retries and expired leases when they run short, after a nack here, and at least once a second.
    if (!this.streaming || now - this.lastLook > LOOK_EVERY_MS) {
      this.lastLook = now;
      // Is there anything to do? One read, so idle members take no locks.
      const [work] = (await this.ctx.queryArrays(GROUP_SQL.work, [s, g])) as [
        [boolean, boolean, boolean, number | null],
      ];
      const [p, x, fresh, nextIn] = work;
      pending = p;
      expired = x;
      this.nextDeadlineAt = nextIn === null ? undefined : Date.now() + nextIn;
      if (!pending && !expired && !fresh) {
        this.streaming = false;
        return answer();
      }
    }
    // Each statement is a transaction of its own: each leaves the delivery state consistent, and none holds a lock
    // past its statement.
    if (expired) await this.ctx.query(GROUP_SQL.expire, [s, g]);
    if (pending || expired) {
      const want = slots();
      const rows = (await this.ctx.queryArrays(GROUP_SQL.pending, [s, g, want, ackTimeout, want.length])) as [
        ...EventRow,
        number,
        string,
      ][];
      rows.sort((a, b) => Number(a[3]) - Number(b[3]));
      for (const row of rows)
        got.get(row[9])?.push({ event: rowToEvent(row as unknown as EventRow), retryCount: row[8] });
    }
    const want = slots();
    if (want.length > 0) {
      const rows = (await this.ctx.queryArrays(GROUP_SQL.fresh, [s, g, want, ackTimeout, want.length])) as [
        ...EventRow,
        string,
        string,
      ][];
      for (const row of rows) got.get(row[9])?.push({ event: rowToEvent(row as unknown as EventRow), retryCount: 0 });
    }
    const total = asks.reduce((n, a) => n + got.get(a.member)!.length, 0);
    this.streaming = total === wanted;
    if (total > 0 && this.nextDeadlineAt === undefined) this.nextDeadlineAt = Date.now() + ackTimeout;
    return answer();
  }

  /** The acks of one turn go in one statement. */
  ack(member: string, event: StoredEvent): Promise<void> {
    return this.acks.add({ member, revision: event.revision });
  }

  async nack(member: string, event: StoredEvent, action: NackAction, reason: string): Promise<void> {
    const key = [this.stream, this.group, event.revision.toString(), member];
    this.streaming = false;
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
