/**
 * The events this process committed itself, most recent first to go, so that its own subscribers read them from
 * the commit's result instead of querying them back.
 *
 * What makes it safe: each entry is an event this process wrote, in a transaction that committed, at a position and
 * revision the commit returned. Committed events never change, so an entry is exactly what the server would answer
 * for that position (or that stream revision). The window is only ever asked "what is at position n" (or "at
 * revision r of stream s"): a reader walks on from its cursor while the next position (revision) is one of ours and
 * stops at the first that is not, which may be another process's event. It never answers "nothing new": an answer
 * from here always holds at least one event, and the reader's next read (past what it got here) goes to the server
 * unless that position is ours too. Another process's events are therefore always read from the table, in position
 * order and with no gaps, exactly as without the window.
 */
import type { StoredEvent } from '../eventStore.js';
import type { PreparedEvent } from '../validation.js';

interface Entry {
  position: bigint;
  stream: string;
  revision: bigint;
  event: PreparedEvent;
  recordedAt: number;
}

/** One commit's events: contiguous positions from `start`. */
interface Segment {
  start: bigint;
  entries: Entry[];
}

/** Events kept: enough for every subscriber of a busy process to catch up from here between two of its reads. */
const CAPACITY = 5_000;

const toStored = (e: Entry): StoredEvent => ({
  id: e.event.id,
  type: e.event.type,
  // Parsed for each reader, as the driver parses each row it reads: no reader shares another's objects.
  data: JSON.parse(e.event.data) as unknown,
  metadata: JSON.parse(e.event.metadata) as unknown,
  streamName: e.stream,
  revision: e.revision,
  position: e.position,
  recordedAt: new Date(e.recordedAt),
});

export class OwnEvents {
  private segments: Segment[] = [];
  private size = 0;
  /** Each stream's entries in the window, in revision order (not always consecutive: others may write to it). */
  private readonly byStream = new Map<string, Entry[]>();

  constructor(private readonly capacity = CAPACITY) {}

  /**
   * A commit of this process: its appends in order, each with its events and the stream revision and log position
   * of its last event, and the server's commit time (ms).
   */
  committed(
    appends: { stream: string; events: PreparedEvent[]; revision: bigint; position: bigint }[],
    at: number,
  ): void {
    if (appends.length === 0) return;
    const entries: Entry[] = [];
    for (const a of appends) {
      const n = BigInt(a.events.length);
      a.events.forEach((event, i) => {
        const k = BigInt(i) - n + 1n;
        const entry = { position: a.position + k, stream: a.stream, revision: a.revision + k, event, recordedAt: at };
        entries.push(entry);
        let list = this.byStream.get(a.stream);
        if (!list) this.byStream.set(a.stream, (list = []));
        list.push(entry);
      });
    }
    this.segments.push({ start: entries[0]!.position, entries });
    this.size += entries.length;
    while (this.size > this.capacity && this.segments.length > 1) this.evict(this.segments.shift()!);
  }

  private evict(segment: Segment): void {
    this.size -= segment.entries.length;
    for (const e of segment.entries) {
      const list = this.byStream.get(e.stream);
      // The oldest entries of each stream are the first of its list.
      if (list?.[0] === e) list.shift();
      if (list?.length === 0) this.byStream.delete(e.stream);
    }
  }

  /** The segment holding position `p`, if any (readers are usually near the end: searched from there). */
  private segmentAt(p: bigint): number {
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const s = this.segments[i]!;
      if (p >= s.start) return p < s.start + BigInt(s.entries.length) ? i : -1;
    }
    return -1;
  }

  /**
   * The events after position `cursor` that pass `keep`, at most `limit`, walking on while each next position is
   * one of ours; `scanned` is the last position walked past. Undefined when that found no event (the server must
   * answer: the next position may be another process's, or the log may end there).
   */
  readAll(
    cursor: bigint,
    limit: number,
    keep?: (stream: string, type: string) => boolean,
  ): { events: StoredEvent[]; scanned: bigint } | undefined {
    let i = this.segmentAt(cursor + 1n);
    if (i < 0) return undefined;
    const events: StoredEvent[] = [];
    let scanned = cursor;
    while (i < this.segments.length && events.length < limit) {
      const s = this.segments[i]!;
      if (s.start !== scanned + 1n) break; // a position that is not ours: the server's
      for (let k = Number(scanned - s.start) + 1; k < s.entries.length && events.length < limit; k++) {
        const e = s.entries[k]!;
        scanned = e.position;
        if (!keep || keep(e.stream, e.event.type)) events.push(toStored(e));
      }
      i++;
    }
    return events.length > 0 ? { events, scanned } : undefined;
  }

  /**
   * The events of `stream` from revision `from` on, at most `limit`, while each next revision is one of ours.
   * Undefined when revision `from` is not.
   */
  readStream(stream: string, from: bigint, limit: number): StoredEvent[] | undefined {
    const list = this.byStream.get(stream);
    if (!list || list.length === 0) return undefined;
    // Binary search for revision `from`.
    let lo = 0;
    let hi = list.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.revision < from) lo = mid + 1;
      else hi = mid;
    }
    if (list[lo]!.revision !== from) return undefined;
    const events: StoredEvent[] = [];
    let next = from;
    for (let k = lo; k < list.length && events.length < limit && list[k]!.revision === next; k++, next++) {
      events.push(toStored(list[k]!));
    }
    return events;
  }

  /** Forgets everything (the store closes). */
  clear(): void {
    this.segments = [];
    this.size = 0;
    this.byStream.clear();
  }
}
