/** The WAL sync: one fdatasync, off the main thread, for all the commits of a moment; none when nothing waits. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WalSync } from '../../src/monitor/walSync.js';

const dirs: string[] = [];
function walFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'swf-walsync-'));
  dirs.push(dir);
  const path = join(dir, 'swf.db-wal');
  writeFileSync(path, 'frames');
  return path;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('WalSync', () => {
  it('settles at once, with no fsync, when no commit is waiting', async () => {
    const sync = new WalSync(walFile());
    await sync.settle();
    expect(sync.syncs).toBe(0);
    await sync.close();
  });

  it('makes a lone commit durable with one fsync, and a second settle of it costs none', async () => {
    const sync = new WalSync(walFile());
    sync.committed();
    await sync.settle();
    expect(sync.syncs).toBe(1);
    await sync.settle();
    expect(sync.syncs).toBe(1);
    await sync.close();
  });

  it('covers every commit noted while one fsync runs with the next single fsync, without a timer', async () => {
    const sync = new WalSync(walFile());
    sync.committed();
    const first = sync.settle(); // its fsync starts now
    const later = Array.from({ length: 20 }, () => {
      sync.committed();
      return sync.settle();
    });
    await Promise.all([first, ...later]);
    expect(sync.syncs).toBe(2);
    await sync.close();
  });

  it('does not settle a commit noted after an fsync began with that fsync', async () => {
    const sync = new WalSync(walFile());
    sync.committed();
    let firstDone = false;
    const first = sync.settle().then(() => (firstDone = true));
    sync.committed();
    let secondDone = false;
    const second = sync.settle().then(() => (secondDone = true));
    await first;
    // The first fsync has returned; the second commit waits for one of its own.
    expect(firstDone).toBe(true);
    expect(secondDone).toBe(false);
    await second;
    expect(sync.syncs).toBe(2);
    await sync.close();
  });

  it('fails the waiting writes with STORE_UNAVAILABLE when the WAL cannot be synced, and tries again for the next', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'swf-walsync-'));
    dirs.push(dir);
    const path = join(dir, 'missing.db-wal');
    const sync = new WalSync(path);
    sync.committed();
    await expect(sync.settle()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    writeFileSync(path, 'frames');
    sync.committed();
    await sync.settle();
    expect(sync.syncs).toBe(2);
    await sync.close();
  });
});
