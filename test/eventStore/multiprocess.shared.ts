/**
 * A store shared by several processes: races, live subscriptions, crash recovery from a checkpoint, and
 * competing consumers across processes. Written once, run against every adapter that serves several processes
 * (SQLite on one file, PostgreSQL on one database). The children run the built package (dist/).
 */
import { describe, expect, it } from 'vitest';
import { openEventStore, type StoredEvent } from '../../src/index.js';
import { collect } from './eventStore.contract.js';
import { fixture, startNode } from '../helpers/spawn.js';

const worker = fixture('storeWorker.mjs');
const run = (command: string, args: Record<string, unknown>) => startNode(worker, [command, JSON.stringify(args)]);

export function describeMultiProcess(name: string, newUrl: () => Promise<string>, skipReason?: string): void {
  describe.skipIf(skipReason !== undefined)(`${name} store shared by several processes`, () => {
    it('two appenders racing with exact expected revisions: one winner per race, no event lost, revisions contiguous, a third process sees every event once, in order', async () => {
      const url = await newUrl();
      const store = await openEventStore(url);
      const watcher = run('subscribe', { url, prefix: 'race-', count: 400 });
      await watcher.waitFor((l) => l.ready === true);
      const a = run('append', { url, stream: 'race-1', count: 200, tag: 'a' });
      const b = run('append', { url, stream: 'race-1', count: 200, tag: 'b' });
      expect(await a.exited).toBe(0);
      expect(await b.exited).toBe(0);
      expect(await watcher.exited).toBe(0);

      const events = await collect(store.readStream('race-1'));
      expect(events.map((e) => e.revision)).toEqual(Array.from({ length: 400 }, (_, i) => BigInt(i)));
      const keys = events.map((e) => `${(e.data as { tag: string }).tag}${(e.data as { i: number }).i}`);
      expect(new Set(keys).size).toBe(400);
      // each appender's own events keep their order
      for (const tag of ['a', 'b']) {
        const mine = events
          .filter((e) => (e.data as { tag: string }).tag === tag)
          .map((e) => (e.data as { i: number }).i);
        expect(mine).toEqual(Array.from({ length: 200 }, (_, i) => i));
      }
      const seen = watcher.lines.filter((l) => 'position' in l) as { position: number; revision: number }[];
      expect(seen.map((l) => l.revision)).toEqual(events.map((e) => Number(e.revision)));
      expect(seen.map((l) => l.position)).toEqual(events.map((e) => Number(e.position)));
      await store.close();
    });

    it('a subscriber killed mid-stream and restarted from its checkpoint sees no gap and no duplicate', async () => {
      const url = await newUrl();
      const store = await openEventStore(url);
      await store.appendToStream(
        'src-1',
        Array.from({ length: 300 }, (_, i) => ({ type: 'N', data: { i } })),
      );
      const first = run('project', { url, prefix: 'src-', seen: 'seen-1', name: 'proj', count: 300, delayMs: 2 });
      await first.waitFor((l) => l.ready === true);
      // kill it somewhere in the middle
      await expect
        .poll(async () => ((await store.checkpoints.get('proj')) ?? 0n) > 30n, { timeout: 60_000, interval: 10 })
        .toBe(true);
      first.proc.kill('SIGKILL');
      await first.exited;
      const atKill = await collect(store.readStream('seen-1'));
      expect(atKill.length).toBeGreaterThan(0);
      expect(atKill.length).toBeLessThan(300);

      const second = run('project', { url, prefix: 'src-', seen: 'seen-1', name: 'proj', count: 300 - atKill.length });
      expect(await second.exited).toBe(0);
      const seen = (await collect(store.readStream('seen-1'))).map((e: StoredEvent) => (e.data as { i: number }).i);
      expect(seen).toEqual(Array.from({ length: 300 }, (_, i) => i));
      await store.close();
    });

    it('two members in two processes share 1,000 events; none is delivered to both', async () => {
      const url = await newUrl();
      const store = await openEventStore(url);
      await store.appendToStream(
        'queue-1',
        Array.from({ length: 1000 }, (_, i) => ({ type: 'slice', data: { i } })),
      );
      const a = run('group', { url, stream: 'queue-1', group: 'workers' });
      const b = run('group', { url, stream: 'queue-1', group: 'workers' });
      const acked = (c: typeof a): number[] => c.lines.filter((l) => 'acked' in l).map((l) => l.acked as number);
      const deadline = Date.now() + 60_000;
      while (acked(a).length + acked(b).length < 1000 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      a.proc.kill();
      b.proc.kill();
      await Promise.all([a.exited, b.exited]);
      const got = [...a.lines, ...b.lines].filter((l) => 'got' in l).map((l) => l.got as number);
      expect(got.length).toBe(1000);
      expect(new Set(got).size).toBe(1000);
      expect(acked(a).length).toBeGreaterThan(0);
      expect(acked(b).length).toBeGreaterThan(0);
      await store.close();
    });

    it('a member killed mid-batch loses nothing: its unacked events go to the other member after the ack timeout', async () => {
      const url = await newUrl();
      const store = await openEventStore(url);
      await store.appendToStream(
        'queue-2',
        Array.from({ length: 200 }, (_, i) => ({ type: 'slice', data: { i } })),
      );
      const doomed = run('group', {
        url,
        stream: 'queue-2',
        group: 'workers',
        bufferSize: 10,
        ackTimeoutMs: 500,
        workMs: 5,
      });
      // it takes events 10 at a time and acks them one by one: kill it halfway through its third batch
      await doomed.waitFor((l) => l.acked === 24);
      doomed.proc.kill('SIGKILL');
      await doomed.exited;
      const doomedAcked = doomed.lines.filter((l) => 'acked' in l).map((l) => l.acked as number);
      const survivor = run('group', { url, stream: 'queue-2', group: 'workers', bufferSize: 10, ackTimeoutMs: 500 });
      const deadline = Date.now() + 30_000;
      const survivorAcked = (): number[] => survivor.lines.filter((l) => 'acked' in l).map((l) => l.acked as number);
      while (doomedAcked.length + survivorAcked().length < 200 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      survivor.proc.kill();
      await survivor.exited;
      const all = [...doomedAcked, ...survivorAcked()].sort((x, y) => x - y);
      expect(all).toEqual(Array.from({ length: 200 }, (_, i) => i));
      // the events the dead member held came back with a retry count
      expect(survivor.lines.some((l) => 'got' in l && (l.retryCount as number) > 0)).toBe(true);
      await store.close();
    });
  });
}
