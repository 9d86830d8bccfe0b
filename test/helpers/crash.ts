/** A `swf run` in a child process, SIGKILLed once the log holds a given number of events. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { openEventStore } from '../../src/eventStore/open.js';

export const CLI = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));

/** Starts `swf run --set ...` on `url` and SIGKILLs it at `killAt` events; 'finished' if the run outpaced it. */
export async function runAndKill(url: string, set: readonly string[], killAt: bigint): Promise<'killed' | 'finished'> {
  const store = await openEventStore(url);
  const child = spawn(process.execPath, [CLI, 'run', '--store', url, ...set.flatMap((s) => ['--set', s])], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, USER: 'crash' },
  });
  let err = '';
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  let exited = false;
  const exit = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      exited = true;
      resolve(code);
    }),
  );
  try {
    const deadline = Date.now() + 60_000;
    while (!exited && ((await store.headPosition()) ?? -1n) < killAt) {
      if (Date.now() > deadline) throw new Error(`the run never reached ${killAt} events; stderr: ${err}`);
      await new Promise((r) => setTimeout(r, 2));
    }
    if (exited) {
      const code = await exit;
      if (code !== 0) throw new Error(`swf run exited ${code}: ${err}`);
      return 'finished';
    }
    child.kill('SIGKILL');
    await exit;
    return 'killed';
  } finally {
    await store.close();
  }
}
