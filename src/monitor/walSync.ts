/**
 * Group commit with the fsync off the main thread, for a SQLite store in WAL mode opened with `synchronous =
 * NORMAL`: a commit then only writes its frames to the `-wal` file (the page cache), and this barrier makes them
 * durable with `fdatasync` of that file on libuv's thread pool. The writes that come in while one fdatasync runs
 * are held (`ready`) and let go together when it ends: they append in one turn of the event loop, which the store
 * commits as one transaction (and the projections fold as one batch), and the next fdatasync covers them all. No
 * timer: an idle monitor commits and syncs a lone write at once. The event loop keeps serving requests (reading,
 * validating, deciding) while the disk works.
 *
 * Why this is as durable as `synchronous = FULL`: fsync acts on the file (the inode), whichever descriptor asks,
 * so once fdatasync returns, every frame written to the WAL before it began is on disk, commit marker included, and
 * SQLite's recovery replays them. A checkpoint never loses them either: with NORMAL it syncs the WAL before copying
 * it into the database and the database before the WAL is reused.
 */
import { constants, type FileHandle, open } from 'node:fs/promises';
import type { Durability } from '../application/testbedApi/service.js';
import { StoreUnavailableError } from '../errors.js';

interface Waiter {
  generation: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class WalSync implements Durability {
  private generation = 0;
  private durable = 0;
  private running = false;
  private waiters: Waiter[] = [];
  /** Writes held until the running fdatasync ends (see `ready`). */
  private held: (() => void)[] = [];
  /** A release of the held writes is scheduled (see `ready`). */
  private releasing = false;
  private handle: FileHandle | undefined;
  private closed = false;
  /** fdatasync calls made, and the commits they covered (many commits share one). */
  syncs = 0;
  get commits(): number {
    return this.generation;
  }

  /** `walPath`: the store's `-wal` file (`<database>-wal`). */
  constructor(private readonly walPath: string) {}

  /**
   * Resolves when a write may append. While an fdatasync runs, when it ends. Otherwise after the event loop has
   * polled for I/O once more: requests whose bytes have already arrived (the other clients' next writes) are read
   * and decided in that poll and join this commit, instead of the first of them committing and syncing alone and
   * the rest waiting for that. No timer: on an idle monitor that poll returns at once.
   */
  ready(): Promise<void> {
    const p = new Promise<void>((resolve) => this.held.push(resolve));
    if (!this.running && !this.releasing) {
      this.releasing = true;
      setImmediate(() =>
        setImmediate(() => {
          this.releasing = false;
          if (!this.running) this.release();
        }),
      );
    }
    return p;
  }

  private release(): void {
    const held = this.held;
    this.held = [];
    for (const go of held) go();
  }

  committed(): void {
    this.generation++;
  }

  settle(): Promise<void> {
    const generation = this.generation;
    if (generation <= this.durable) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ generation, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.running || this.waiters.length === 0) return;
    this.running = true;
    // Every commit counted so far has been written: the sync that starts now covers them all.
    const target = this.generation;
    this.sync().then(
      () => {
        this.durable = Math.max(this.durable, target);
        this.finish(target, undefined);
      },
      (e: unknown) =>
        this.finish(
          target,
          new StoreUnavailableError(
            `fdatasync of ${this.walPath} failed: ${e instanceof Error ? e.message : String(e)}`,
          ),
        ),
    );
  }

  private finish(target: number, error: unknown): void {
    this.running = false;
    // The writes that came in during the fsync go now, together: one commit (the store's, of one turn of the event
    // loop), then one fsync for them all.
    this.release();
    const done = this.waiters.filter((w) => w.generation <= target);
    this.waiters = this.waiters.filter((w) => w.generation > target);
    for (const w of done) {
      if (error === undefined) w.resolve();
      else w.reject(error);
    }
    this.kick();
  }

  private async sync(): Promise<void> {
    if (this.closed) throw new Error('closed');
    this.syncs++;
    // The WAL stays the same file while the store has it open (SQLite removes it only when the last connection
    // closes), so one descriptor serves for good.
    this.handle ??= await open(this.walPath, constants.O_RDONLY);
    await this.handle.datasync();
  }

  /** Waits for the sync under way, then lets go of the file. */
  async close(): Promise<void> {
    await this.settle().catch(() => undefined);
    this.closed = true;
    await this.handle?.close();
    this.handle = undefined;
  }
}
