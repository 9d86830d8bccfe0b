/**
 * `swf monitor` SIGKILLed in the middle of a burst of writes: every write it answered with a 2xx is in the log
 * afterwards (a 2xx means committed, and with the durable store fsynced), and the log is whole.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { openEventStore } from '../../src/eventStore/open.js';
import { call, TOKEN } from './testbedHelpers.js';

const CLI = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));
let child: ChildProcess | undefined;

afterEach(() => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

function startMonitor(storeUrl: string): Promise<string> {
  child = spawn(process.execPath, [CLI, 'monitor', '--port', '0', '--json', '--store', storeUrl], {
    env: { ...process.env, SWF_API_TOKEN: TOKEN },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc = child;
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) resolve((JSON.parse(out.split('\n')[0]!) as { url: string }).url);
    });
    proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    proc.once('exit', (code) => reject(new Error(`swf monitor exited (${code}): ${err}`)));
  });
}

describe('swf monitor killed during a burst of writes', () => {
  it('loses no write it acknowledged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'swf-testbed-kill-'));
    const storeUrl = `sqlite:${join(dir, 'swf.db')}`;
    const url = await startMonitor(storeUrl);
    const ok = async (method: string, path: string, body: unknown): Promise<Record<string, unknown>> => {
      const a = await call(url, method, path, body);
      expect(a.status, JSON.stringify(a.body)).toBeLessThan(300);
      return a.body as Record<string, unknown>;
    };
    await ok('POST', '/api/runs/', { run_number: 100010, start_time: '2026-12-07T15:21:34' });
    await ok('POST', '/api/stf-files/', { run: 1, stf_filename: 'swf.100010.000001.stf' });
    await ok('POST', '/api/fastmon-files/', {
      stf_file: 'swf.100010.000001.stf',
      tf_filename: 'swf.100010.000001_tf_001.tf',
    });

    const ackedLogs: string[] = [];
    const ackedSlices: number[] = [];
    let stop = false;
    let sent = 0;
    const client = async (c: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const n = sent++;
        try {
          if (n % 2 === 0) {
            const message = `burst ${c}-${i}`;
            const a = await call(
              url,
              'POST',
              '/api/logs/',
              {
                app_name: 'base_agent',
                instance_name: `agent-${c}`,
                timestamp: '2026-12-07T15:21:15.171767',
                level: 20,
                levelname: 'INFO',
                message,
                module: 'm',
                funcname: 'f',
                lineno: 1,
                process: 1,
                thread: 1,
                extra_data: null,
              },
              { token: null },
            );
            if (a.status === 201) ackedLogs.push(message);
          } else {
            const a = await call(url, 'POST', '/api/tf-slices/', {
              slice_id: n,
              tf_first: 1,
              tf_last: 2,
              tf_count: 2,
              fastmon_file: 'swf.100010.000001_tf_001.tf',
              run_number: 100010,
            });
            if (a.status === 201) ackedSlices.push((a.body as { id: number }).id);
          }
        } catch {
          return; // the connection died with the monitor: this write was not acknowledged
        }
      }
    };
    const exited = new Promise((r) => child!.once('exit', r));
    const clients = Array.from({ length: 8 }, (_, c) => client(c));
    // Kill it once it has acknowledged a good number of writes, mid-burst.
    await expect
      .poll(() => ackedLogs.length + ackedSlices.length, { timeout: 60_000, interval: 20 })
      .toBeGreaterThan(200);
    child!.kill('SIGKILL');
    stop = true;
    await Promise.all(clients);
    await exited;

    expect(ackedLogs.length).toBeGreaterThan(0);
    expect(ackedSlices.length).toBeGreaterThan(0);
    const store = await openEventStore(storeUrl);
    try {
      const logs = new Set<string>();
      for await (const e of store.readStream('testbed-logs')) logs.add((e.data as { message: string }).message);
      expect(ackedLogs.filter((m) => !logs.has(m))).toEqual([]);
      const slices = new Set<number>();
      for await (const e of store.readAll({ filter: { eventTypePrefix: ['TfSliceRegistered'] } }))
        slices.add(Number(e.position));
      expect(ackedSlices.filter((id) => !slices.has(id))).toEqual([]);
    } finally {
      await store.close();
    }
  }, 120_000);
});
