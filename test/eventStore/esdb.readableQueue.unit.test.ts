/**
 * The queue every EventStoreDB client stream is read through: order, backpressure, errors kept from before
 * iteration, abort, and ending once what was produced is consumed.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ReadableQueue } from '../../src/eventStore/esdb/readableQueue.js';

const source = (): PassThrough => new PassThrough({ objectMode: true, highWaterMark: 16 });

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('ReadableQueue', () => {
  it('delivers everything in order, pausing a fast source and resuming it as the consumer catches up', async () => {
    const s = source();
    const q = new ReadableQueue<number>(s);
    let paused = 0;
    s.on('pause', () => paused++);
    for (let i = 0; i < 1000; i++) s.write(i);
    s.end();
    const got = await all(q);
    expect(got).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(paused).toBeGreaterThan(0);
    expect(q.ending).toBe('end');
  });

  it('keeps an error emitted before anyone iterates, after the events that came first', async () => {
    const s = source();
    const q = new ReadableQueue<number>(s);
    s.write(1);
    await new Promise((resolve) => setImmediate(resolve));
    s.emit('error', new Error('dropped'));
    expect(q.failed).toBe(true);
    const got: number[] = [];
    await expect(
      (async () => {
        for await (const x of q) got.push(x);
      })(),
    ).rejects.toThrow('dropped');
    expect(got).toEqual([1]);
  });

  it('fails at once with the abort error, even with events still buffered', async () => {
    const s = source();
    const abort = new AbortController();
    const q = new ReadableQueue<number>(s, abort.signal, () => new Error('closed during a read'));
    s.write(1);
    s.write(2);
    expect(await q.next()).toEqual({ value: 1, done: false });
    abort.abort();
    await expect(q.next()).rejects.toThrow('closed during a read');
  });

  it('ends once drained when told to, without waiting for the source to end', async () => {
    const s = source();
    const q = new ReadableQueue<number>(s);
    for (let i = 0; i < 300; i++) s.write(i); // more than the queue holds before pausing the source
    q.endWhenDrained();
    const got = await all(q);
    expect(got).toHaveLength(300);
    expect(s.writableEnded).toBe(false);
  });

  it('reports a source closed without its end as ending "close"', async () => {
    const s = source();
    const q = new ReadableQueue<number>(s);
    s.write(1);
    setImmediate(() => s.destroy());
    expect(await all(q)).toEqual([1]);
    expect(q.ending).toBe('close');
  });
});
