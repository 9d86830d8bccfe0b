/**
 * WAL checkpoints off the main thread, for durable SQLite stores (`durable: true`: the broker gateway, whose
 * latency from frame to acknowledgement counts). SQLite's automatic checkpoint runs inside the commit that crosses
 * its threshold: that commit then also copies megabytes of WAL into the database and fsyncs it, and every frame
 * waiting behind it waits tens to hundreds of milliseconds (`npm run bench:gateway`'s latency p99). Here the
 * writer's automatic checkpoint is only a backstop far out, and a thread of its own checkpoints every
 * `everyEvents` appended events (checkpointThread.ts).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

export interface CheckpointerData {
  path: string;
  busyTimeoutMs: number;
}
export type CheckpointerReply = { log: number; checkpointed: number } | { error: string };

export interface Checkpointer {
  /** Counts appended events; asks for a checkpoint once enough have been written since the last one. */
  written(events: number): void;
  /** Checkpoints done (for tests). */
  readonly done: number;
  /** The last error the thread reported, if any (a checkpoint that failed is tried again later). */
  readonly lastError: string | undefined;
  close(): Promise<void>;
}

function threadModule(): URL {
  const url = new URL('./checkpointThread.js', import.meta.url);
  if (existsSync(url)) return url;
  const built = fileURLToPath(url).replace(
    /([\\/])src([\\/]eventStore[\\/]sqlite[\\/]checkpointThread\.js)$/,
    '$1dist$1src$2',
  );
  if (!existsSync(built)) {
    throw new Error(`the SQLite checkpoint thread's module is not built (${built}): run npm run build`);
  }
  return pathToFileURL(built);
}

export function startCheckpointer(path: string, busyTimeoutMs: number, everyEvents = 2000): Checkpointer {
  const worker = new Worker(threadModule(), { workerData: { path, busyTimeoutMs } satisfies CheckpointerData });
  // The thread must not keep a process alive that has nothing else to do.
  worker.unref();
  let sinceLast = 0;
  let inFlight = false;
  let done = 0;
  let lastError: string | undefined;
  let closed = false;
  worker.on('message', (reply: CheckpointerReply) => {
    inFlight = false;
    if ('error' in reply) lastError = reply.error;
    else done++;
  });
  worker.on('error', (e) => {
    lastError = e.message;
  });
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  return {
    written(events: number) {
      sinceLast += events;
      if (closed || inFlight || sinceLast < everyEvents) return;
      sinceLast = 0;
      inFlight = true;
      worker.postMessage('checkpoint');
    },
    get done() {
      return done;
    },
    get lastError() {
      return lastError;
    },
    async close() {
      if (closed) return exited;
      closed = true;
      // Referenced again: the process waits for the thread to close its connection (an unreferenced worker's exit
      // would leave this promise unsettled when nothing else keeps the event loop alive).
      worker.ref();
      worker.postMessage('close');
      await exited;
    },
  };
}
