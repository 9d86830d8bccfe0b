/**
 * The real testbed agents' REST calls from a captured run (two runs, 2,924 calls), replayed in order against
 * `swf monitor`'s write API: every call gets the status the agents got, ids the server hands out are carried
 * forward, and afterwards the monitor's views hold the runs, STF files, TF samples and slices, the same again after a
 * rebuild from the log.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { list } from '../../src/projections/queries.js';
import { openViews } from '../../src/projections/views.js';
import { call, corpus, type CorpusCall, startWriteMonitor, type WriteMonitor } from './testbedHelpers.js';

let m: WriteMonitor;
const calls = corpus();
const answers = new Map<number, { status: number; body: unknown }>();

beforeAll(async () => {
  m = await startWriteMonitor();
  // Ids the server chooses differ from the recording stand-in's (STF file UUIDs; slice ids, which are log positions
  // here): map its ids to ours, as the agents would have used ours.
  const fileIds = new Map<string, string>();
  const sliceIds = new Map<string, string>();
  for (const c of calls) {
    let path = c.path;
    for (const [theirs, ours] of fileIds) path = path.replace(theirs, ours);
    path = path.replace(/^\/api\/tf-slices\/(\d+)\/$/, (whole, id: string) => {
      const ours = sliceIds.get(id);
      return ours === undefined ? whole : `/api/tf-slices/${ours}/`;
    });
    const query = new URLSearchParams(c.query).toString();
    const a = await call(m.url, c.method, `${path}${query ? `?${query}` : ''}`, c.body ?? undefined, {
      token: c.auth === 'token' ? undefined : null,
    });
    answers.set(c.seq, a);
    const theirs = (c.response as { file_id?: unknown } | undefined)?.file_id;
    const ours = (a.body as { file_id?: unknown } | undefined)?.file_id;
    if (typeof theirs === 'string' && typeof ours === 'string') fileIds.set(theirs, ours);
    if (c.path === '/api/tf-slices/' && c.method === 'POST') {
      const theirId = (c.response as { id?: unknown } | undefined)?.id;
      const ourId = (a.body as { id?: unknown } | undefined)?.id;
      if (typeof theirId === 'number' && typeof ourId === 'number') sliceIds.set(String(theirId), String(ourId));
    }
  }
}, 300_000);
afterAll(async () => {
  await m?.close();
});

const responseOf = (c: CorpusCall): Record<string, unknown> | undefined =>
  typeof c.response === 'object' && c.response !== null && !Array.isArray(c.response)
    ? (c.response as Record<string, unknown>)
    : undefined;

describe('the captured testbed run, replayed through REST', () => {
  it('gives every call the status the real agents got', () => {
    const wrong = calls
      .filter((c) => answers.get(c.seq)?.status !== c.status)
      .map(
        (c) =>
          `#${c.seq} ${c.method} ${c.path}: ${answers.get(c.seq)?.status} ${JSON.stringify(answers.get(c.seq)?.body).slice(0, 200)}`,
      );
    expect(wrong).toEqual([]);
  });

  it('hands out the same agent ids, run numbers, execution sequences and run keys, and a distinct id per slice', () => {
    for (const c of calls) {
      const theirs = responseOf(c);
      if (!theirs || c.method !== 'POST') continue;
      const ours = answers.get(c.seq)!.body as Record<string, unknown>;
      for (const key of ['agent_id', 'run_number', 'sequence', 'run_id'] as const) {
        if (key in theirs) expect(ours[key], `#${c.seq} ${c.path} ${key}`).toEqual(Number(theirs[key]));
      }
    }
    const ids = calls
      .filter((c) => c.method === 'POST' && c.path === '/api/tf-slices/')
      .map((c) => (answers.get(c.seq)!.body as { id: number }).id);
    expect(ids.every((id) => Number.isSafeInteger(id) && id > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("answers the FastMon registration with the serializer's fields, which the agent broadcasts as tf_file_registered", () => {
    const c = calls.find((x) => x.path === '/api/fastmon-files/')!;
    const ours = answers.get(c.seq)!.body as Record<string, unknown>;
    const theirs = responseOf(c)!;
    expect(Object.keys(ours).sort()).toEqual(Object.keys(theirs).sort());
    for (const k of [
      'stf_file',
      'tf_filename',
      'tf_first',
      'tf_last',
      'tf_count',
      'file_size_bytes',
      'status',
      'metadata',
    ])
      expect(ours[k], k).toEqual(theirs[k]);
  });

  it('holds the runs, STF files, TF samples and slices the agents wrote', async () => {
    const get = async (path: string): Promise<unknown> => {
      const a = await call(m.url, 'GET', path, undefined, { token: null });
      expect(a.status, path).toBe(200);
      return a.body;
    };
    const runs = (await get('/api/runs/')) as { run_number: number; run_id: number; end_time: string | null }[];
    expect(runs.map((r) => r.run_number).sort()).toEqual([100010, 100011]);
    expect(runs.every((r) => typeof r.end_time === 'string')).toBe(true);
    const stf = (await get('/api/stf-files/')) as { stf_filename: string; status: string }[];
    expect(stf).toHaveLength(4);
    expect(stf.every((f) => f.status === 'processed')).toBe(true);
    expect(((await get('/api/fastmon-files/')) as unknown[]).length).toBe(28);
    const slices = (await get('/api/tf-slices/?limit=1')) as { count: number };
    expect(slices.count).toBe(290);
    // The one slice the injected fake payload processed, found by (run_number, slice_id) and PATCHed by the agent.
    const done = (await get('/api/tf-slices/?status=completed')) as { tf_filename: string }[];
    expect(done.map((s) => s.tf_filename)).toEqual(['swf.100011.000001_tf_001_slice_000.tf']);
    const state = (await get('/api/run-states/100011/')) as Record<string, unknown>;
    expect(state).toMatchObject({ run_number: 100011, phase: 'completed', state: 'ended', source: 'reported' });
    const executions = (await get('/api/workflow-executions/')) as { execution_id: string; status: string }[];
    expect(executions.map((e) => [e.execution_id, e.status]).sort()).toEqual([
      ['stf_datataking-capture-0001', 'completed'],
      ['stf_datataking-capture-0002', 'completed'],
    ]);
    const monitor = (await get('/api/workflow-monitor/stf_datataking-capture-0002/')) as { runs: unknown[] };
    expect(monitor.runs).toEqual([
      expect.objectContaining({ run_number: 100011, phase: 'completed', source: 'reported' }),
    ]);
    const agents = (await get('/api/systemagents/')) as { instance_name: string }[];
    expect(agents.map((a) => a.instance_name)).toContain('data-agent-capture-1');
    const logs = (await get('/api/logs/?limit=1')) as { count: number };
    expect(logs.count).toBe(calls.filter((c) => c.path === '/api/logs/').length);
    const events = (await get('/api/system-state-events/?run_number=100010')) as unknown[];
    expect(events.length).toBe(
      calls.filter(
        (c) => c.path === '/api/system-state-events/' && (c.body as { run_number: string }).run_number === '100010',
      ).length,
    );
  });

  it('gives the same answers from views rebuilt from the log', async () => {
    await m.views.ready();
    const rebuilt = await openViews(m.store, { path: join(m.dir, 'rebuilt.views.db') });
    try {
      await rebuilt.ready();
      for (const name of ['executions', 'runs', 'runStates', 'stfFiles', 'fastmonFiles', 'slices', 'agents'] as const) {
        expect(list(rebuilt.db, name).rows, name).toEqual(list(m.views.db, name).rows);
      }
    } finally {
      await rebuilt.close();
    }
  });
});
