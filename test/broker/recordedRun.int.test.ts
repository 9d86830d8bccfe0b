/**
 * A recorded real run is a run: the corpus recorded as the gateway records it (the recorder, no broker needed here;
 * gateway.int.test.ts records it through ActiveMQ), then read back by `swf replay` (at its end and part-way) and
 * carried to another store by `swf export` and `swf import`, as a run swf-es made would be.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Recorder } from '../../src/broker/recorder.js';
import { openEventStore } from '../../src/eventStore/open.js';
import { swfIn } from '../helpers/cli.js';
import { publishedFrames } from './corpus.js';

interface RunStateView {
  run_id: string;
  execution_id: string;
  phase: string;
  stf_files: number;
  stf_samples_received: number;
  slices_created: number;
  slices_queued: number;
  slices_processing: number;
  slices_completed: number;
  slices_failed: number;
  slices_retried: number;
}

/** The RunState fields `swf runs` shows beside `swf replay` (every counter of the rule). */
const RUN_STATE_FIELDS = [
  'phase',
  'stf_files',
  'stf_samples_received',
  'slices_created',
  'slices_queued',
  'slices_processing',
  'slices_completed',
  'slices_failed',
  'slices_retried',
] as const;

describe('a recorded real run in swf replay, swf export and swf import', () => {
  let dir: string;
  let url: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'swf-recorded-run-'));
    url = `sqlite:${join(dir, 'corpus.db')}`;
    const store = await openEventStore(url);
    const recorder = new Recorder({ namespace: 'torre1', maxBodyBytes: 524_288, leaseFactor: 3, gatewayId: 'gw' });
    for (const f of publishedFrames()) {
      const body = JSON.stringify(f.body);
      const decision = recorder.decide({
        destination: f.destination,
        headers: f.headers,
        body,
        bytes: Buffer.byteLength(body),
        receivedAt: new Date(f.captured_at * 1000),
      });
      if (decision.kind === 'record') await store.commit(decision.appends);
    }
    await store.close();
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const replay = async (store: string, ...args: string[]) => replayOf('100010', store, ...args);
  const replayOf = async (run: string, store: string, ...args: string[]) => {
    const r = await swfIn(dir, 'replay', run, ...args, '--json', '--store', store);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    return JSON.parse(r.out) as { run_state: RunStateView; events: number; time: string; position: string | number };
  };

  const runInList = async (store: string, run = 100010): Promise<Record<string, unknown> | undefined> => {
    const r = await swfIn(dir, 'runs', '--json', '--store', store);
    expect(r.err).toBe('');
    const { executions } = JSON.parse(r.out) as {
      executions: { execution_id: string; runs: Record<string, unknown>[] }[];
    };
    const found: Record<string, unknown>[] = executions.flatMap((e) =>
      e.runs.map((run) => ({ ...run, execution_id: e.execution_id })),
    );
    return found.find((r) => r.run_number === run);
  };

  it('swf replay folds run 100010 to what swf runs shows, and --at stands part-way through it', async () => {
    const end = await replay(url);
    expect(end.run_state).toMatchObject({
      run_id: '100010',
      execution_id: 'stf_datataking-capture-0001',
      phase: 'completed',
      stf_files: 2,
      stf_samples_received: 14,
      slices_created: 140,
      slices_queued: 140,
    });
    const listed = await runInList(url);
    for (const key of RUN_STATE_FIELDS) expect(listed?.[key], key).toBe(end.run_state[key]);

    // The real DAQ ended the run at 15:21:48 while the fast processing agent was still cutting slices (a rule
    // break `swf conformance` lists): part-way, the run has ended with some of its slices.
    const mid = await replay(url, '--at', '2026-12-07T15:21:50Z');
    expect(mid.events).toBeLessThan(end.events);
    expect(Date.parse(mid.time)).toBeLessThanOrEqual(Date.parse('2026-12-07T15:21:50Z'));
    expect(mid.run_state.phase).toBe('completed');
    expect(mid.run_state.slices_created).toBeGreaterThan(0);
    expect(mid.run_state.slices_created).toBeLessThan(140);
  });

  // Run 100011 holds the capture harness's injected copy of its first slice, sent after that slice had failed for
  // good, and the `done` result the real transformer gave it. By the RunState rule the copy is not the slice's first
  // `slice` message (it counts nothing) and the result comes after the slice's final state (refused, counts
  // nothing): every reader shows 150 slices, all failed (swf conformance lists both as rule breaks).
  it('swf replay, swf runs and time travel by position agree on run 100011, its repeated slice and late result', async () => {
    const end = await replayOf('100011', url);
    expect(end.run_state).toMatchObject({
      run_id: '100011',
      execution_id: 'stf_datataking-capture-0002',
      slices_created: 150,
      slices_queued: 0,
      slices_processing: 0,
      slices_completed: 0,
      slices_failed: 150,
    });
    const listed = await runInList(url, 100011);
    expect(listed).toBeDefined();
    for (const key of RUN_STATE_FIELDS) expect(listed?.[key], key).toBe(end.run_state[key]);
    // time travel to the run's last event by position: the same RunState, field by field
    const atEnd = await replayOf('100011', url, '--at', String(end.position));
    expect(atEnd.events).toBe(end.events);
    expect(atEnd.run_state).toEqual(end.run_state);
    // swf replay --check recomputes swf-es agents' decisions: a recorded real run has none, and it says where the
    // rule breaks are listed instead of calling the run deterministic
    const check = await swfIn(dir, 'replay', '100011', '--check', '--store', url);
    expect(check.code).toBe(2);
    expect(check.err).toMatch(/recorded from the testbed's broker.*swf conformance 100011 lists its rule breaks/);
  });

  it('swf export bundles it and swf import brings it into another store as the same run', async () => {
    const exported = await swfIn(dir, 'export', '100010', '--store', url);
    expect(exported.code).toBe(0);
    const lines = exported.out.trim().split('\n');
    const header = JSON.parse(lines[0]!) as { run_number: number; execution_id: string; events: number };
    expect(header).toMatchObject({ run_number: 100010, execution_id: 'stf_datataking-capture-0001' });
    expect(lines).toHaveLength(header.events + 1);
    // The frames go as recorded: body and broker metadata.
    const slice = lines.slice(1).map((l) => JSON.parse(l) as { type: string; metadata: { origin?: string } });
    expect(slice.filter((e) => e.type === 'slice' && e.metadata.origin === 'broker')).toHaveLength(140);

    const file = join(dir, 'run-100010.ndjson');
    writeFileSync(file, exported.out);
    const other = `sqlite:${join(dir, 'other.db')}`;
    const imported = await swfIn(dir, 'import', file, '--store', other);
    expect(imported.err).toBe('');
    expect(imported.code).toBe(0);
    expect((await replay(other)).run_state).toEqual((await replay(url)).run_state);
    expect(await runInList(other)).toEqual(await runInList(url));
  });
});
