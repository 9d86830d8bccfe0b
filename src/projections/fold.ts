/**
 * The runner's side of a projection: runs the writes `evolve` returns, and owns the state behind the projection's
 * `Keyed` handles (loading, the batch's prefetch, the cache, writing changed values at the end of a batch, letting
 * go of values). The projection's code is the same whether the fold is plain (a transaction on the views
 * database) or bulk (from empty views, its writes recorded for the writer thread): only this file knows.
 */
import type { Statement, ViewsDb } from './db.js';
import type { Keyed, ProjectedEvent, Projection, StateSpec, StoredRow, Write } from './projection.js';
import type { ProjectionName } from './schema.js';

export interface FoldMode {
  /**
   * The tables were empty when this fold began and nothing else writes them until it ends (a catch-up from empty
   * views, its writes pipelined to the writer thread): what is not in memory has no row, but for the values let
   * go of (`evicted`), so the fold reads nothing back but those, and never asks for a write's result.
   */
  bulk: boolean;
  /**
   * Values of one kind kept in memory before all of them are let go of (a kind whose values never become final,
   * or a run with more live slices than this). Default: 200 000 for a bulk fold, which cannot read back what it
   * let go of without remembering its name; 20 000 for a plain fold, which reads it back from its row (a batch's
   * prefetch, one query per 200 keys), so a monitor following a long run holds a bounded number of them, not
   * every slice still queued.
   */
  maxCached?: number;
}

const NO_ROW: StoredRow = Object.freeze({ id: 0, stored: false });

/** Keys a batch looks up, read in one query per this many. */
const PREFETCH = 200;

/** A value in memory, with what the runner knows of it: one map entry a key, looked up once per use. */
interface Slot<K, V> {
  readonly key: K;
  value: V;
  /** Its row's id (a state with `rowid`); 0 while it has no row. */
  id: number;
  /** Changed in this batch (it is in `dirty`). */
  dirty: boolean;
}

class KeyedState<K extends string | number, V> implements Keyed<K, V> {
  private readonly cache = new Map<K, Slot<K, V>>();
  /** The values changed in this batch, in the order they first changed. */
  private dirty: Slot<K, V>[] = [];
  /** Keys a batch refers to that have no row (learnt by `prefetch`, valid for that batch). */
  private readonly absent = new Set<K>();
  /** Bulk: the keys with a row that are no longer in memory (read back when an event needs them). */
  readonly evicted = new Set<K>();
  /** The last row id given out; undefined until read again in a batch (another process may insert meanwhile). */
  private lastId: number | undefined;
  private readonly maxId: Statement<{ n: number }> | undefined;
  private readonly one: Statement<Record<string, unknown>>;
  private readonly many: Statement<Record<string, unknown>> | undefined;
  /**
   * The slot last read or written: an event looks up its run (its execution, its sender) several times, and most
   * events are about the key the one before was, so it answers without hashing the key again.
   */
  private last: Slot<K, V> | undefined;

  constructor(
    private readonly spec: StateSpec<K, V>,
    db: ViewsDb,
    private readonly bulk: boolean,
    private readonly maxCached: number,
  ) {
    const select = `SELECT ${spec.columns ?? '*'} FROM ${spec.table} WHERE ${spec.key}`;
    this.one = db.prepare(`${select} = ?`);
    this.maxId =
      spec.rowid !== undefined && !bulk
        ? db.prepare(`SELECT coalesce(max(${spec.rowid}), 0) AS n FROM ${spec.table}`)
        : undefined;
    // a bulk fold began with empty tables
    if (bulk) this.lastId = 0;
    this.many =
      spec.keyOf && !bulk
        ? db.prepare(`${select} IN (${Array.from({ length: PREFETCH }, () => '?').join(', ')})`)
        : undefined;
  }

  /** The slot of `key`: from memory, else from its row; undefined when it has none. */
  private slotOf(key: K): Slot<K, V> | undefined {
    const last = this.last;
    if (last !== undefined && last.key === key) return last;
    let slot = this.cache.get(key);
    if (slot === undefined) {
      if (this.bulk ? !this.evicted.delete(key) : this.absent.has(key)) return undefined;
      const row = this.one.get([key]);
      if (!row) return undefined;
      slot = this.loaded(key, row);
    }
    this.last = slot;
    return slot;
  }

  get(key: K): V | undefined {
    return this.slotOf(key)?.value;
  }

  private loaded(key: K, row: Record<string, unknown>): Slot<K, V> {
    const rowid = this.spec.rowid;
    const slot: Slot<K, V> = {
      key,
      value: this.spec.fromRow(row),
      id: rowid === undefined ? 0 : (row[rowid] as number),
      dirty: false,
    };
    this.cache.set(key, slot);
    return slot;
  }

  private rowOf(slot: Slot<K, V>): StoredRow {
    if (this.spec.rowid === undefined) return NO_ROW;
    if (slot.id !== 0) return { id: slot.id, stored: true };
    this.lastId ??= this.maxId!.get()!.n;
    slot.id = ++this.lastId;
    return { id: slot.id, stored: false };
  }

  /** The slot of `key` in memory, made if it has none (the value is about to be set). */
  private slotFor(key: K, value: V): Slot<K, V> {
    const last = this.last;
    if (last !== undefined && last.key === key) return last;
    let slot = this.cache.get(key);
    if (slot === undefined) {
      slot = { key, value, id: 0, dirty: false };
      this.cache.set(key, slot);
      // a bulk fold never learns of absent keys
      if (!this.bulk) this.absent.delete(key);
    }
    this.last = slot;
    return slot;
  }

  put(key: K, value: V): void {
    const slot = this.slotFor(key, value);
    slot.value = value;
    if (!slot.dirty) {
      slot.dirty = true;
      this.dirty.push(slot);
    }
  }

  keep(key: K, value: V): void {
    this.slotFor(key, value).value = value;
  }

  /** Loads, in a few queries, the values the batch's events will look up. The bulk fold has them in memory. */
  prefetch(events: readonly ProjectedEvent[]): void {
    const spec = this.spec;
    const many = this.many;
    if (!spec.keyOf || !many) return;
    this.absent.clear();
    const wanted = new Set<K>();
    for (const e of events) {
      const key = spec.keyOf(e);
      if (key !== undefined && !this.cache.has(key)) wanted.add(key);
    }
    const keys = [...wanted];
    const column = this.spec.key;
    for (let i = 0; i < keys.length; i += PREFETCH) {
      const params: (K | null)[] = keys.slice(i, i + PREFETCH);
      while (params.length < PREFETCH) params.push(null);
      for (const row of many.all(params)) {
        const key = row[column] as K;
        this.loaded(key, row);
        wanted.delete(key);
      }
    }
    for (const key of wanted) this.absent.add(key);
  }

  /** The writes of the values changed in the batch; lets go of the final ones, and of all when there are too many. */
  flush(run: (w: Write) => void): void {
    const spec = this.spec;
    const dirty = this.dirty;
    this.dirty = [];
    for (const slot of dirty) {
      slot.dirty = false;
      if (spec.toWrite) run(spec.toWrite(slot.key, slot.value, this.rowOf(slot)));
      // A final value takes no more events (a late one is refused): keep only live ones in memory.
      if (spec.isFinal?.(slot.value) === true) {
        this.cache.delete(slot.key);
        if (this.bulk) this.evicted.add(slot.key);
      }
    }
    this.last = undefined;
    if (!this.bulk) this.lastId = undefined;
    if (this.cache.size > this.maxCached) {
      if (this.bulk) for (const key of this.cache.keys()) this.evicted.add(key);
      this.cache.clear();
    }
  }

  reset(): void {
    this.cache.clear();
    for (const slot of this.dirty) slot.dirty = false;
    this.dirty = [];
    this.absent.clear();
    this.last = undefined;
    this.lastId = undefined;
  }

  get size(): number {
    return this.cache.size;
  }
}

/** A projection at work, as the runner drives it. */
export interface Fold {
  readonly name: ProjectionName;
  /** Before a batch's events are applied (inside its transaction): loads what they will look up. */
  prefetch(events: readonly ProjectedEvent[]): void;
  apply(event: ProjectedEvent): void;
  /** At the end of a batch, still inside its transaction: writes what changed in memory. */
  flush(): void;
  /** Forgets what is in memory: the rows changed behind its back, or the transaction rolled back. */
  reset(): void;
  /** How many values this bulk fold let go of and remembers by name. */
  readonly evicted: number;
  /** How many values it holds in memory, per kind of state. */
  cached(): Record<string, number>;
}

/** A projection at work on one database: its state, and its writes run (or recorded) there. */
export class ProjectionFold<S> implements Fold {
  readonly name: ProjectionName;
  private readonly states: KeyedState<string | number, unknown>[] = [];
  private readonly stateNames: string[] = [];
  private readonly handles: S;
  private readonly statements = new Map<string, Statement>();
  private readonly runWrite = (w: Write): void => {
    let s = this.statements.get(w.sql);
    if (s === undefined) {
      s = this.db.prepare(w.sql);
      this.statements.set(w.sql, s);
    }
    s.run(w.params);
  };

  constructor(
    private readonly projection: Projection<S>,
    private readonly db: ViewsDb,
    private readonly mode: FoldMode,
  ) {
    this.name = projection.name;
    const handles: Record<string, unknown> = {};
    const specs: [string, StateSpec<string | number, unknown>][] = Object.entries(projection.state);
    for (const [name, spec] of specs) {
      const state = new KeyedState(spec, db, mode.bulk, mode.maxCached ?? (mode.bulk ? 200_000 : 20_000));
      this.states.push(state);
      this.stateNames.push(name);
      handles[name] = state;
    }
    this.handles = handles as S;
  }

  prefetch(events: readonly ProjectedEvent[]): void {
    for (const s of this.states) s.prefetch(events);
  }

  apply(event: ProjectedEvent): void {
    const writes = this.projection.evolve(event, this.handles);
    for (let i = 0; i < writes.length; i++) this.runWrite(writes[i]!);
  }

  flush(): void {
    for (const s of this.states) s.flush(this.runWrite);
  }

  reset(): void {
    if (this.mode.bulk) throw new Error('a bulk fold cannot start again: its tables are no longer empty');
    for (const s of this.states) s.reset();
  }

  get evicted(): number {
    let n = 0;
    for (const s of this.states) n += s.evicted.size;
    return n;
  }

  cached(): Record<string, number> {
    return Object.fromEntries(this.states.map((s, i) => [this.stateNames[i]!, s.size]));
  }
}
