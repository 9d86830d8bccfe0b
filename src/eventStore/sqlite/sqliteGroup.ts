/**
 * Competing consumers on SQLite. A group's delivery state lives in the database, so members in different
 * processes share it and it survives restarts:
 * - `group_cursors`: the next revision of the stream not yet handed out, and the group's settings;
 * - `group_deliveries`: events handed out and not yet acked (in flight, waiting for a retry, or parked).
 * Every change is a job of the store's group commit (one IMMEDIATE transaction per turn of the event loop), so two
 * members never hold the same event at once.
 */
import type Database from 'better-sqlite3';
import type { GroupOptions, NackAction, ParkedEvent, StoredEvent } from '../eventStore.js';
import type { Delivery, GroupBackend } from '../shared/subscriptions.js';
import { limitedStatement } from './limited.js';
import { type RawRow, rowToEvent } from './rows.js';

const COLUMNS = 'e.position, e.id, e.stream, e.revision, e.type, e.data, e.metadata, e.recorded_at';

export class SQLiteGroup implements GroupBackend {
  static createSchema(db: Database.Database): void {
    db.exec(`
      CREATE TABLE IF NOT EXISTS group_cursors (
        stream          TEXT    NOT NULL,
        grp             TEXT    NOT NULL,
        next_revision   INTEGER NOT NULL,
        max_retry_count INTEGER NOT NULL,
        ack_timeout_ms  INTEGER NOT NULL,
        PRIMARY KEY (stream, grp)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS group_deliveries (
        stream      TEXT    NOT NULL,
        grp         TEXT    NOT NULL,
        revision    INTEGER NOT NULL,
        retry_count INTEGER NOT NULL,
        state       TEXT    NOT NULL CHECK (state IN ('inflight', 'pending', 'parked')),
        member      TEXT,
        deadline    INTEGER,
        reason      TEXT,
        parked_at   INTEGER,
        PRIMARY KEY (stream, grp, revision)
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS group_deliveries_state ON group_deliveries (stream, grp, state, revision);
    `);
  }

  private readonly q;
  private readonly claimJob;
  private settings: { maxRetry: number; ackTimeout: number } | undefined;

  constructor(
    private readonly db: Database.Database,
    private readonly stream: string,
    private readonly group: string,
    private readonly options: GroupOptions,
    private readonly translate: (e: unknown) => unknown,
    /** The store's group commit: acks and nacks ride along with the appends of the same turn. */
    private readonly enqueue: <T>(run: () => T) => Promise<T>,
  ) {
    this.q = {
      cursor: db.prepare(
        `SELECT next_revision, max_retry_count, ack_timeout_ms FROM group_cursors WHERE stream = ? AND grp = ?`,
      ),
      createCursor: db.prepare(
        `INSERT OR IGNORE INTO group_cursors (stream, grp, next_revision, max_retry_count, ack_timeout_ms) VALUES (?, ?, ?, ?, ?)`,
      ),
      streamHead: db.prepare(`SELECT max(revision) FROM events WHERE stream = ?`).pluck(),
      // Is there anything to do? (a read, so idle members do not take the write lock)
      work: db
        .prepare(
          `SELECT EXISTS (SELECT 1 FROM group_deliveries WHERE stream = ? AND grp = ? AND state = 'pending') AS pending,
                  EXISTS (SELECT 1 FROM group_deliveries WHERE stream = ? AND grp = ? AND state = 'inflight' AND deadline <= ?) AS expired,
                  coalesce((SELECT max(revision) FROM events WHERE stream = ?) >= (SELECT next_revision FROM group_cursors WHERE stream = ? AND grp = ?), 0) AS fresh`,
        )
        .raw(),
      expire: db.prepare(
        `UPDATE group_deliveries
            SET retry_count = retry_count + 1, member = NULL, deadline = NULL,
                state = CASE WHEN retry_count + 1 > ? THEN 'parked' ELSE 'pending' END,
                reason = CASE WHEN retry_count + 1 > ? THEN 'ack timeout: no ack after ' || ? || ' retries' ELSE reason END,
                parked_at = CASE WHEN retry_count + 1 > ? THEN ? ELSE parked_at END
          WHERE stream = ? AND grp = ? AND state = 'inflight' AND deadline <= ?`,
      ),
      pending: limitedStatement(
        db,
        `SELECT ${COLUMNS}, d.retry_count FROM group_deliveries d JOIN events e ON e.stream = d.stream AND e.revision = d.revision
            WHERE d.stream = ? AND d.grp = ? AND d.state = 'pending' ORDER BY d.revision LIMIT ?`,
      ),
      take: db.prepare(
        `UPDATE group_deliveries SET state = 'inflight', member = ?, deadline = ? WHERE stream = ? AND grp = ? AND revision = ?`,
      ),
      fresh: limitedStatement(
        db,
        `SELECT ${COLUMNS} FROM events e WHERE e.stream = ? AND e.revision >= ? ORDER BY e.revision LIMIT ?`,
      ),
      insertDelivery: db.prepare(
        `INSERT INTO group_deliveries (stream, grp, revision, retry_count, state, member, deadline) VALUES (?, ?, ?, 0, 'inflight', ?, ?)`,
      ),
      advance: db.prepare(`UPDATE group_cursors SET next_revision = ? WHERE stream = ? AND grp = ?`),
      ack: db.prepare(
        `DELETE FROM group_deliveries WHERE stream = ? AND grp = ? AND revision = ? AND state = 'inflight' AND member = ?`,
      ),
      retry: db.prepare(
        `UPDATE group_deliveries
            SET retry_count = retry_count + 1, member = NULL, deadline = NULL,
                state = CASE WHEN retry_count + 1 > ? THEN 'parked' ELSE 'pending' END,
                reason = ?, parked_at = CASE WHEN retry_count + 1 > ? THEN ? ELSE NULL END
          WHERE stream = ? AND grp = ? AND revision = ? AND state = 'inflight' AND member = ?`,
      ),
      park: db.prepare(
        `UPDATE group_deliveries SET state = 'parked', member = NULL, deadline = NULL, reason = ?, parked_at = ?
          WHERE stream = ? AND grp = ? AND revision = ? AND state = 'inflight' AND member = ?`,
      ),
      release: db.prepare(
        `UPDATE group_deliveries SET state = 'pending', member = NULL, deadline = NULL
          WHERE stream = ? AND grp = ? AND state = 'inflight' AND member = ?`,
      ),
      nextDeadline: db
        .prepare(`SELECT min(deadline) FROM group_deliveries WHERE stream = ? AND grp = ? AND state = 'inflight'`)
        .pluck(),
      parked: db
        .prepare(
          `SELECT ${COLUMNS}, d.reason, d.parked_at FROM group_deliveries d JOIN events e ON e.stream = d.stream AND e.revision = d.revision
            WHERE d.stream = ? AND d.grp = ? AND d.state = 'parked' ORDER BY d.revision`,
        )
        .raw(),
      replay: db.prepare(
        `UPDATE group_deliveries SET state = 'pending', retry_count = 0, reason = NULL, parked_at = NULL
          WHERE stream = ? AND grp = ? AND state = 'parked'`,
      ),
    };
    // A job of the store's group commit: it runs inside the flush's transaction (all or nothing with it, or in a
    // savepoint of its own when the batch runs isolated). `pending` and `expired` are what `claim` saw just before
    // (the same turn): a retry or an expiry that appears in between waits for the next claim.
    this.claimJob = (member: string, max: number, now: number, pending: number, expired: number): Delivery[] => {
      const { maxRetry, ackTimeout } = this.ensure();
      const s = this.stream;
      const g = this.group;
      if (expired) this.q.expire.run(maxRetry, maxRetry, maxRetry, maxRetry, now, s, g, now);
      const out: Delivery[] = [];
      for (const r of pending || expired ? (this.q.pending.all(s, g, max) as [...RawRow, number][]) : []) {
        this.q.take.run(member, now + ackTimeout, s, g, r[3]);
        out.push({ event: rowToEvent(r as unknown as RawRow), retryCount: r[8] });
      }
      if (out.length < max) {
        const cursor = this.q.cursor.get(s, g) as { next_revision: number };
        const rows = this.q.fresh.all(s, cursor.next_revision, max - out.length) as RawRow[];
        for (const r of rows) {
          this.q.insertDelivery.run(s, g, r[3], member, now + ackTimeout);
          out.push({ event: rowToEvent(r), retryCount: 0 });
        }
        if (rows.length > 0) this.q.advance.run(rows[rows.length - 1]![3] + 1, s, g);
      }
      return out;
    };
  }

  /** The group's settings: stored by the first member that created it, shared by all. */
  private ensure(): { maxRetry: number; ackTimeout: number } {
    if (this.settings) return this.settings;
    let row = this.q.cursor.get(this.stream, this.group) as
      { next_revision: number; max_retry_count: number; ack_timeout_ms: number } | undefined;
    if (!row) {
      const start = this.options.from === 'end' ? ((this.q.streamHead.get(this.stream) as number | null) ?? -1) + 1 : 0;
      this.q.createCursor.run(
        this.stream,
        this.group,
        start,
        this.options.maxRetryCount ?? 10,
        this.options.ackTimeoutMs ?? 30_000,
      );
      row = this.q.cursor.get(this.stream, this.group) as {
        next_revision: number;
        max_retry_count: number;
        ack_timeout_ms: number;
      };
    }
    this.settings = { maxRetry: row.max_retry_count, ackTimeout: row.ack_timeout_ms };
    return this.settings;
  }

  private run<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e: unknown) {
      throw this.translate(e);
    }
  }

  async claim(member: string, max: number, now: number): Promise<Delivery[]> {
    // Is there anything to do? A read, so that idle members do not take the write lock.
    const [pending, expired, fresh] = this.run(() => {
      this.ensure();
      const s = this.stream;
      const g = this.group;
      return this.q.work.get(s, g, s, g, now, s, s, g) as [number, number, number];
    });
    if (!pending && !expired && !fresh) return [];
    // Claims ride in the store's group commit, with the appends and acks of the same turn.
    return this.enqueue(() => this.claimJob(member, max, now, pending, expired));
  }

  async ack(member: string, event: StoredEvent): Promise<void> {
    await this.enqueue(() => this.q.ack.run(this.stream, this.group, Number(event.revision), member));
  }

  async nack(member: string, event: StoredEvent, action: NackAction, reason: string, now: number): Promise<void> {
    await this.enqueue(() => {
      const rev = Number(event.revision);
      if (action === 'skip') this.q.ack.run(this.stream, this.group, rev, member);
      else if (action === 'park') this.q.park.run(reason, now, this.stream, this.group, rev, member);
      else {
        const { maxRetry } = this.ensure();
        this.q.retry.run(maxRetry, reason, maxRetry, now, this.stream, this.group, rev, member);
      }
    });
  }

  release(member: string): void {
    this.run(() => this.q.release.run(this.stream, this.group, member));
  }

  nextDeadlineIn(now: number): number | undefined {
    const d = this.run(() => this.q.nextDeadline.get(this.stream, this.group) as number | null);
    return d === null ? undefined : d - now;
  }

  parked(): ParkedEvent[] {
    return this.run(() =>
      (this.q.parked.all(this.stream, this.group) as [...RawRow, string | null, number | null][]).map((r) => ({
        event: rowToEvent(r as unknown as RawRow),
        reason: r[8] ?? '',
        parkedAt: new Date(r[9] ?? 0),
      })),
    );
  }

  replay(): number {
    return this.run(() => this.q.replay.run(this.stream, this.group).changes);
  }
}
