import { main } from '../../src/cli/main.js';

/** Runs the `swf` command in this process (the composition root's `main`), capturing its output. */
export async function swfIn(cwd: string, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const sink = (f: (s: string) => void) =>
    ({ write: (c: string | Uint8Array) => (f(String(c)), true) }) as unknown as NodeJS.WritableStream;
  const code = await main(argv, {
    stdout: sink((s) => (out += s)),
    stderr: sink((s) => (err += s)),
    env: {},
    cwd,
  });
  return { code, out, err };
}
