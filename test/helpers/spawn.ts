import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));

export interface Child {
  proc: ChildProcess;
  lines: Record<string, unknown>[];
  /** Resolves when a line satisfying `pred` has been printed. */
  waitFor(pred: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
  stderr: () => string;
}

/** Starts `node <script> <args...>` and collects its JSON lines. */
export function startNode(script: string, args: string[], env: NodeJS.ProcessEnv = {}): Child {
  const proc = spawn(process.execPath, [script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const lines: Record<string, unknown>[] = [];
  const listeners = new Set<() => void>();
  let err = '';
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  createInterface({ input: proc.stdout }).on('line', (line) => {
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      lines.push({ text: line });
    }
    for (const l of listeners) l();
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return {
    proc,
    lines,
    exited,
    stderr: () => err,
    waitFor(pred, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const hit = lines.find(pred);
          if (hit) {
            listeners.delete(check);
            clearTimeout(timer);
            resolve(hit);
            return true;
          }
          return false;
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`timed out waiting for a line; stderr: ${err.slice(-2000)}`));
        }, timeoutMs);
        if (!check()) listeners.add(check);
        void exited.then(() =>
          setTimeout(() => {
            if (listeners.has(check) && !check()) {
              listeners.delete(check);
              clearTimeout(timer);
              reject(new Error(`process exited before the line; stderr: ${err.slice(-2000)}`));
            }
          }, 50),
        );
      });
    },
  };
}

/** What a finished child printed, and its exit code. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Starts `node <cli> <args...>` as user `user`, collecting its output; the child is pushed on `children` so that the
 * test's afterEach can kill what is left.
 */
export function spawnCli(
  cli: string,
  args: string[],
  user: string,
  children: ChildProcess[],
): { proc: ChildProcess; out: Promise<CliResult> } {
  const proc = spawn(process.execPath, [cli, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, USER: user },
  });
  children.push(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const out = new Promise<CliResult>((resolve) => proc.on('exit', (code) => resolve({ code, stdout, stderr })));
  return { proc, out };
}
