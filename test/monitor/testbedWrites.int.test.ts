/**
 * The testbed's write API: race-free counters shared with the DAQ simulator across processes, idempotent retries,
 * token auth, bounded bodies, DRF-style refusals that write nothing, and a RunState kept as reported beside what
 * the log implies.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMonitor } from '../../src/monitor/server.js';
import { swfIn } from '../helpers/cli.js';
import { appendRunFixture } from '../helpers/runFixture.js';
import { call, startWriteMonitor, TOKEN, type WriteMonitor } from './testbedHelpers.js';

const exec = promisify(execFile);
const CLI = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));
const COUNTER = fileURLToPath(new URL('../fixtures/testbedCounter.mjs', import.meta.url));

let m: WriteMonitor;
beforeAll(async () => {
  m = await startWriteMonitor();
});
afterAll(async () => {
  await m?.close();
});

const post = (path: string, body?: unknown, token?: string | null) =>
  call(m.url, 'POST', path, body, token === undefined ? {} : { token });

async function setUpSample(runNumber: number): Promise<{ stf: string; sample: string; runPk: number }> {
  const run = await post('/api/runs/', { run_number: runNumber, start_time: '2026-12-07T15:21:34.588221' });
  expect(run.status).toBe(201);
  const runPk = (run.body as { run_id: number }).run_id;
  const stf = `swf.${runNumber}.000001.stf`;
  expect((await post('/api/stf-files/', { run: runPk, stf_filename: stf })).status).toBe(201);
  const sample = `swf.${runNumber}.000001_tf_001.tf`;
  const s = await post('/api/fastmon-files/', {
    stf_file: stf,
    tf_filename: sample,
    tf_first: 1,
    tf_last: 30,
    tf_count: 30,
  });
  expect(s.status).toBe(201);
  return { stf, sample, runPk };
}

const sliceBody = (run: number, sliceId: number) => ({
  slice_id: sliceId,
  tf_first: 2 * sliceId + 1,
  tf_last: 2 * sliceId + 2,
  tf_count: 2,
  tf_filename: `swf.${run}.000001_tf_001_slice_${String(sliceId).padStart(3, '0')}.tf`,
  stf_filename: `swf.${run}.000001.stf`,
  run_number: String(run),
  status: 'queued',
  retries: 0,
  metadata: { execution_id: 'race-0001', created_by: 'test' },
});

describe('counters', () => {
  it('hands out run numbers without duplicate or gap to 8 processes x 50 requests and a swf run at once', async () => {
    const base = (await post('/api/state/next-run-number/')).body as { run_number: number };
    const services = Array.from({ length: 4 }, () => exec(process.execPath, [COUNTER, 'service', m.storeUrl, '50']));
    const clients = Array.from({ length: 4 }, () => exec(process.execPath, [COUNTER, 'http', m.url, TOKEN, '50']));
    const daq = Array.from({ length: 1 }, () =>
      exec(process.execPath, [CLI, 'run', '--json', '--store', m.storeUrl, '--set', 'fast_processing.stf_count=1'], {
        cwd: m.dir,
      }),
    );
    const rest = (await Promise.all([...services, ...clients])).flatMap((r) => JSON.parse(r.stdout) as number[]);
    const runs = (await Promise.all(daq)).map((r) => (JSON.parse(r.stdout) as { run_number: number }).run_number);
    expect(rest).toHaveLength(400);
    const all = [base.run_number, ...rest, ...runs].sort((a, b) => a - b);
    expect(all[0]).toBe(base.run_number);
    expect(all).toEqual(Array.from({ length: all.length }, (_, i) => base.run_number + i));
    // and the next one carries on after them all
    expect(((await post('/api/state/next-run-number/')).body as { run_number: number }).run_number).toBe(
      base.run_number + all.length,
    );
  }, 120_000);

  it('counts agent ids and execution sequences from 1, each its own sequence', async () => {
    const a = (await post('/api/state/next-agent-id/')).body as { agent_id: number; status: string };
    const b = (await post('/api/state/next-agent-id/')).body as { agent_id: number };
    expect(a.status).toBe('success');
    expect(b.agent_id).toBe(a.agent_id + 1);
    const s = await post('/api/state/next-workflow-execution-id/', { workflow_name: 'stf_datataking' });
    expect(s.status).toBe(200);
    expect(s.body).toMatchObject({ status: 'success' });
    expect((s.body as { sequence: number }).sequence).toBeGreaterThanOrEqual(1);
  });
});

describe('idempotency', () => {
  it('a repeated identical POST (a retry after a lost answer) registers no second STF file or slice', async () => {
    await setUpSample(200010);
    const first = await post('/api/tf-slices/', sliceBody(200010, 0));
    const second = await post('/api/tf-slices/', sliceBody(200010, 0));
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect((second.body as { id: number }).id).toBe((first.body as { id: number }).id);
    const rows = (await call(m.url, 'GET', '/api/tf-slices/?run_number=200010', undefined, { token: null })).body;
    expect(rows).toHaveLength(1);
  });

  it('a different body under the same key is refused as the testbed does (400), and nothing is written', async () => {
    const { stf, runPk } = await setUpSample(200011);
    const before = await m.store.headPosition();
    const other = await post('/api/stf-files/', { run: runPk, stf_filename: stf, status: 'processed' });
    expect(other.status).toBe(400);
    expect(other.body).toEqual({ stf_filename: ['stf file with this stf filename already exists.'] });
    expect((await post('/api/tf-slices/', sliceBody(200011, 0))).status).toBe(201);
    const clash = await post('/api/tf-slices/', { ...sliceBody(200011, 0), tf_count: 3, tf_last: 3 });
    expect(clash.status).toBe(400);
    expect(clash.body).toEqual({ non_field_errors: ['The fields fastmon_file, slice_id must make a unique set.'] });
    const after = await m.store.headPosition();
    expect(Number(after) - Number(before)).toBe(1); // only the one slice
  });

  it('the same STF file posted twice with the same body is one record', async () => {
    const run = await post('/api/runs/', { run_number: 200012, start_time: '2026-12-07T15:21:34' });
    const body = {
      run: (run.body as { run_id: number }).run_id,
      stf_filename: 'swf.200012.000001.stf',
      status: 'registered',
    };
    const a = await post('/api/stf-files/', body);
    const b = await post('/api/stf-files/', body);
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(b.body).toEqual(a.body);
    const rows = (await call(m.url, 'GET', '/api/stf-files/?run_number=200012', undefined, { token: null })).body;
    expect(rows).toHaveLength(1);
  });
});

describe('security and bad input', () => {
  const WRITES: [string, string][] = [
    ['POST', '/api/state/next-agent-id/'],
    ['POST', '/api/state/next-run-number/'],
    ['POST', '/api/state/next-workflow-execution-id/'],
    ['POST', '/api/systemagents/heartbeat/'],
    ['POST', '/api/subscribers/'],
    ['POST', '/api/namespaces/ensure/'],
    ['POST', '/api/workflow-definitions/'],
    ['POST', '/api/workflow-executions/'],
    ['PATCH', '/api/workflow-executions/x-0001/'],
    ['POST', '/api/runs/'],
    ['PATCH', '/api/runs/1/'],
    ['POST', '/api/run-states/'],
    ['PATCH', '/api/run-states/100010/'],
    ['POST', '/api/stf-files/'],
    ['PATCH', '/api/stf-files/7d3aa7aa-ccef-42b2-8810-37c13ff17641/'],
    ['POST', '/api/fastmon-files/'],
    ['POST', '/api/tf-slices/'],
    ['PATCH', '/api/tf-slices/1/'],
    ['POST', '/api/system-state-events/'],
  ];

  it('refuses a missing or wrong token with 401 and a JSON body, writing nothing', async () => {
    const before = await m.store.headPosition();
    for (const [method, path] of WRITES) {
      const missing = await call(m.url, method, path, {}, { token: null });
      expect(missing.status, `${method} ${path}`).toBe(401);
      expect(missing.body).toEqual({ detail: 'Authentication credentials were not provided.' });
      expect(missing.headers.get('www-authenticate')).toBe('Token');
      const wrong = await call(m.url, method, path, {}, { token: 'not-the-token' });
      expect(wrong.status, `${method} ${path}`).toBe(401);
      expect(wrong.body).toEqual({ detail: 'Invalid token.' });
    }
    expect(await m.store.headPosition()).toBe(before);
  });

  it('keeps /api/logs/ open, as the testbed does, but bounded', async () => {
    const record = {
      app_name: 'base_agent',
      instance_name: 'data-agent-test-1',
      timestamp: '2026-12-07T15:21:15.171767',
      level: 20,
      levelname: 'INFO',
      message: 'hello',
      module: 'm',
      funcname: 'f',
      lineno: 1,
      process: 1,
      thread: 1,
      extra_data: null,
    };
    expect((await call(m.url, 'POST', '/api/logs/', record, { token: null })).status).toBe(201);
    const big = await call(m.url, 'POST', '/api/logs/', { ...record, message: 'x'.repeat(70_000) }, { token: null });
    expect(big.status).toBe(413);
    expect(big.body).toMatchObject({ detail: expect.stringContaining('too large') as unknown });
  });

  it('answers a body over the limit with 413 on every write endpoint', async () => {
    const raw = JSON.stringify({ pad: 'x'.repeat(1024 * 1024 + 10) });
    for (const [method, path] of WRITES) {
      const r = await call(m.url, method, path, undefined, { raw });
      expect(r.status, `${method} ${path}`).toBe(413);
    }
  });

  it('answers hostile bodies with 400/404 and DRF field messages, never 500, and writes nothing', async () => {
    const before = await m.store.headPosition();
    const bodies: (string | undefined)[] = [
      '{',
      '[]',
      '"text"',
      'null',
      '{"run_number": "abc", "stf_filename": 5, "run": -1}',
      '{"slice_id": {"a": 1}, "tf_first": null, "metadata": "x"}',
      '{"status": "nonsense", "state_changed_at": "yesterday"}',
      JSON.stringify({ instance_name: 'x'.repeat(500), agent_type: [] }),
      '{"__proto__": {"polluted": true}, "constructor": {"prototype": {"x": 1}}}',
    ];
    for (const [method, path] of WRITES) {
      if (path.includes('/api/state/')) continue; // the counters take no body (or an optional name)
      for (const raw of bodies) {
        const r = await call(m.url, method, path, undefined, raw === undefined ? {} : { raw });
        // A PATCH of no known field is a 200 that changes nothing (DRF ignores unknown fields).
        const allowed = method === 'PATCH' ? [200, 400, 404] : [400, 404];
        expect(allowed, `${method} ${path} ${raw}: ${JSON.stringify(r.body)}`).toContain(r.status);
        expect(typeof r.body).toBe('object');
      }
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(await m.store.headPosition()).toBe(before);
  });

  it('names each bad field as DRF does', async () => {
    const r = await post('/api/stf-files/', { run: 'one', status: 'lost' });
    expect(r.status).toBe(400);
    expect(r.body).toEqual({
      run: ['A valid integer is required.'],
      stf_filename: ['This field is required.'],
      status: ['"lost" is not a valid choice.'],
    });
    const unknownRun = await post('/api/stf-files/', { run: 99_999, stf_filename: 'swf.1.000001.stf' });
    expect(unknownRun.body).toEqual({ run: ['Invalid pk "99999" - object does not exist.'] });
    expect((await call(m.url, 'PATCH', '/api/tf-slices/999999999/', { status: 'failed' })).status).toBe(404);
    expect((await call(m.url, 'PUT', '/api/runs/1/', {})).status).toBe(405);
  });

  it('swf monitor refuses a non-loopback address without a token, and a bad token file, with exit code 2', async () => {
    const open = await swfIn(m.dir, 'monitor', '--host', '0.0.0.0', '--port', '0', '--store', m.storeUrl);
    expect(open.code).toBe(2);
    expect(open.err).toMatch(/refusing to serve the write API on 0\.0\.0\.0 \(not loopback\) without an API token/);
    const missing = await swfIn(m.dir, 'monitor', '--token-file', 'no-such-file', '--store', m.storeUrl);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/cannot read --token-file no-such-file/);
  });

  it('refuses to serve writes on a non-loopback address without a token', async () => {
    await expect(
      startMonitor({
        store: m.store,
        views: m.views,
        host: '0.0.0.0',
        port: 0,
        writes: { token: undefined, namespace: 'x' },
      }),
    ).rejects.toThrow(/without an API token/);
  });
});

describe('RunState', () => {
  it('keeps what an agent reports beside what the log implies, and shows where they differ', async () => {
    const fixture = await appendRunFixture(m.store, { runNumber: 300010, executionId: 'fixture-swf-0001' });
    const n = fixture.runNumber;
    const reported = await post('/api/run-states/', {
      run_number: String(n),
      phase: 'initializing',
      state: 'imminent',
      substate: 'preparing',
      target_worker_count: 30,
      state_changed_at: '2026-12-07T15:21:29.573098',
      metadata: { execution_id: 'stf_datataking-capture-0001' },
    });
    expect(reported.status).toBe(201);
    const patched = await call(m.url, 'PATCH', `/api/run-states/${n}/`, { slices_created: 999, phase: 'physics' });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ run_number: n, slices_created: 999, phase: 'physics', state: 'imminent' });
    const shown = (await call(m.url, 'GET', `/api/run-states/${n}/`, undefined, { token: null })).body as Record<
      string,
      unknown
    >;
    expect(shown).toMatchObject({ source: 'reported', slices_created: 999 });
    const derived = shown.derived as Record<string, unknown>;
    expect(derived).toMatchObject({ source: 'log', run_number: n });
    expect(derived.slices_created).not.toBe(999);
    expect(shown.differences).toContainEqual({
      field: 'slices_created',
      reported: 999,
      derived: derived.slices_created,
    });
    // `swf conformance` lists the same difference (exit 1: a rule broken).
    const r = await exec(process.execPath, [CLI, 'conformance', String(n), '--json', '--store', m.storeUrl]).then(
      () => ({ code: 0, stdout: '' }),
      (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
    );
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as { findings: { rule: string; detail: string }[] };
    const finding = report.findings.find((f) => f.rule === 'runstate-reported-differs');
    expect(finding?.detail).toContain(
      `slices_created reported 999, the messages imply ${String(derived.slices_created)}`,
    );
  });
});
