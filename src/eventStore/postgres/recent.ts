/**
 * The events this process appended most recently, so that its own subscribers read them without a round trip.
 *
 * A workflow in one process (`swf run`) is a chain: an agent appends, another agent's subscription wakes and reads
 * what was appended, appends in turn, and so on. Read from the server, each link costs a query after the commit;
 * read from here, none. The window holds a contiguous range of positions [lo, hi] and is safe to serve because
 * committed events never change. Past `hi` the log may hold other processes' events: a subscriber whose cursor is
 * at `hi` is told "nothing new" without asking the server only while the window is `synced` (as far as this
 * process knows, `hi` is the log head); any sign of another writer (a foreign notification, a poll that found
 * another head, a reconnect of the LISTEN connection) clears it, so the next read goes to the server. A lost
 * notification therefore delays delivery until the next poll, as before, and loses nothing.
 */
import type { StoredEvent } from '../eventStore.js';
import type { PreparedEvent } from '../validation.js';

interface Entry {
  stream: string;
  revision: bigint;
  event: PreparedEvent;
  recordedAt: number;
}

/** Events kept: enough for every subscriber of a busy process to catch up from here between two of its reads. */
const CAPACITY = 20_000;

export class RecentEvents {
  private entries: Entry[] = [];
  /** The position of entries[0]; the window is empty while `entries` is. */
  private lo = 1n;
  /** Whether the window's end is the log head as far as this process knows. */
  private synced = false;
  /** Bumped at every sign of another writer (see `foreignWrite`). */
  private foreign = 0;

  /** The last position in the window (lo - 1 when empty). */
  get hi(): bigint {
    return this.lo + BigInt(this.entries.length) - 1n;
  }

  /** Another process may have appended. */
  foreignWrite(): void {
    this.foreign++;
    this.synced = false;
  }

  /** A token to pass to `sawHead`: whether another writer showed up in between. */
  get foreignMark(): number {
    return this.foreign;
  }

  /** A read of the server found `head` as the log head (with no other writer seen since `mark`). */
  sawHead(head: bigint, mark: number): void {
    if (mark === this.foreign && head === this.hi && this.entries.length > 0) this.synced = true;
  }

  /**
   * This process committed these appends, from position `first` on, in one transaction. Contiguous with the window:
   * added to it; otherwise (another writer's events came in between) the window starts again with them.
   */
  committed(first: bigint, appends: { stream: string; revision: bigint; events: PreparedEvent[] }[], at: number): void {
    if (first !== this.hi + 1n || this.entries.length === 0) {
      this.entries = [];
      this.lo = first;
      this.synced = false;
    }
    for (const a of appends) {
      const base = a.revision - BigInt(a.events.length) + 1n;
      a.events.forEach((event, i) =>
        this.entries.push({ stream: a.stream, revision: base + BigInt(i), event, recordedAt: at }),
      );
    }
    if (this.entries.length > 2 * CAPACITY) {
      const drop = this.entries.length - CAPACITY;
      this.entries = this.entries.slice(drop);
      this.lo += BigInt(drop);
    }
  }

  /** This process wrote without recording its events here (the one-by-one path): the window is no longer the head. */
  unsynced(): void {
    this.synced = false;
  }

  /**
   * The events after `cursor` from the window, up to `limit` that pass `keep`; undefined when the window cannot
   * answer (the server must). `scanned` is the last position looked at.
   */
  read(
    cursor: bigint,
    limit: number,
    keep?: (stream: string, type: string) => boolean,
  ): { events: StoredEvent[]; scanned: bigint } | undefined {
    const hi = this.hi;
    if (cursor === hi) return this.synced ? { events: [], scanned: cursor } : undefined;
    if (cursor < this.lo - 1n || cursor > hi) return undefined;
    const events: StoredEvent[] = [];
    let i = Number(cursor - this.lo) + 1;
    for (; i < this.entries.length && events.length < limit; i++) {
      const e = this.entries[i]!;
      if (keep && !keep(e.stream, e.event.type)) continue;
      events.push({
        id: e.event.id,
        type: e.event.type,
        data: JSON.parse(e.event.data) as unknown,
        metadata: JSON.parse(e.event.metadata) as unknown,
        streamName: e.stream,
        revision: e.revision,
        position: this.lo + BigInt(i),
        recordedAt: new Date(e.recordedAt),
      });
    }
    // Nothing for this subscriber up to `hi`: "nothing new" only if `hi` is the head; otherwise the server must look
    // past it (an empty answer would make the subscriber wait for the next notification).
    if (events.length === 0 && !this.synced) return undefined;
    return { events, scanned: this.lo + BigInt(i) - 1n };
  }
}
