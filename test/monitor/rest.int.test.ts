/** The REST API over a real SQLite store: testbed shapes, DRF pages, filters, JSON errors, read-only. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConcurrencyError, ERROR_CODES, IllegalStateError } from '../../src/errors.js';
import { RUN_STATE_FIELDS } from '../../src/machines/index.js';
import { statusOf } from '../../src/monitor/server.js';
import { openViewsDb } from '../../src/projections/db.js';
import { getRunState } from '../../src/projections/queries.js';
import { Projector } from '../../src/projections/runner.js';
import { appendRunFixture, type RunFixture } from '../helpers/runFixture.js';
import { get, startTestMonitor, type TestMonitor } from './helpers.js';

let m: TestMonitor;
let run: RunFixture;

beforeAll(async () => {
  m = await startTestMonitor();
  run = await appendRunFixture(m.store);
});
afterAll(async () => {
  await m.close();
});

const json = async (path: string): Promise<unknown> => {
  const r = await get(m.url, path);
  expect(r.status, `${path}: ${r.text}`).toBe(200);
  return r.json;
};

describe('REST', () => {
  it('answers right after the events are appended: it catches up first', async () => {
    const state = (await json(`/api/run-states/${run.runNumber}/`)) as Record<string, unknown>;
    expect(state).toMatchObject({ run_number: 100010, ...run.expected, finished: true });
  });

  it('lists are plain arrays; with limit/offset they are DRF pages with absolute next/previous links', async () => {
    const all = (await json(`/api/tf-slices/?run_number=${run.runNumber}`)) as unknown[];
    expect(all).toHaveLength(run.expected.slices_created);
    const page = (await json(`/api/tf-slices/?run_number=${run.runNumber}&limit=5&offset=5`)) as {
      count: number;
      next: string;
      previous: string;
      results: unknown[];
    };
    expect(page.count).toBe(run.expected.slices_created);
    expect(page.results).toEqual(all.slice(5, 10));
    expect(page.next).toBe(`${m.url}/api/tf-slices/?run_number=100010&limit=5&offset=10`);
    expect(page.previous).toBe(`${m.url}/api/tf-slices/?run_number=100010&limit=5`);
    const counted = (await json('/api/tf-slices/?limit=0')) as { count: number; results: unknown[] };
    expect(counted).toMatchObject({ count: run.expected.slices_created, results: [], next: null });
  });

  it('gives a slice its own tf_filename, its sample as fastmon_file, and filters by plain names', async () => {
    const failed = (await json(`/api/tf-slices/?status=failed&run_number=${run.runNumber}`)) as Record<
      string,
      unknown
    >[];
    expect(failed).toEqual([
      expect.objectContaining({
        tf_filename: run.incidents!.failedForGood,
        fastmon_file: run.incidents!.failedForGood.replace(/_slice_\d{3}\.tf$/, '.tf'),
        stf_filename: expect.stringMatching(/\.stf$/),
        run_number: 100010,
        slice_id: 0,
        tf_first: expect.any(Number),
        tf_last: expect.any(Number),
        tf_count: expect.any(Number),
        status: 'failed',
        retries: 3,
        assigned_worker: expect.any(String),
        created_at: expect.any(String),
        completed_at: expect.any(String),
      }),
    ]);
    const one = await json(`/api/tf-slices/${encodeURIComponent(run.incidents!.retried)}/`);
    expect(one).toMatchObject({
      status: 'completed',
      retries: 1,
      max_retries: 3,
      metadata: { req_id: expect.any(String) },
    });
    const bySample = (await json(
      `/api/tf-slices/?fastmon_file=${encodeURIComponent(run.samples[0]!)}&slice_id=1`,
    )) as unknown[];
    expect(bySample).toHaveLength(1);
  });

  it('serves executions with parameter_values, runs keyed by run number, STF files, samples, messages, logs, agents', async () => {
    const execution = (await json(`/api/workflow-executions/${run.executionId}/`)) as Record<string, unknown>;
    expect(execution).toMatchObject({
      execution_id: run.executionId,
      status: 'completed',
      parameter_values: { fast_processing: { slices_per_sample: 3 } },
    });
    expect(await json('/api/runs/100010/')).toMatchObject({
      run_number: 100010,
      run_id: '100010',
      total_stf_files: 3,
      phase: 'completed',
    });
    expect(await json('/api/stf-files/?run_number=100010&status=processed')).toHaveLength(3);
    expect(await json(`/api/fastmon-files/?stf_filename=${run.stfFiles[0]}`)).toHaveLength(2);
    const messages = (await json(`/api/workflow-messages/?execution_id=${run.executionId}`)) as {
      position: number;
      message_type: string;
    }[];
    expect(messages.map((x) => x.position)).toEqual([...messages.map((x) => x.position)].sort((a, b) => a - b));
    expect(new Set(messages.map((x) => x.message_type))).toEqual(
      new Set([
        'run_imminent',
        'run_imminent_worker',
        'start_run',
        'stf_gen',
        'stf_ready',
        'tf_file_registered',
        'slice',
        'slice_result',
        'end_run',
      ]),
    );
    // Bodies come from the log, by position: for a page (point reads) and for a whole execution (one range read).
    const page = (await json(`/api/workflow-messages/?execution_id=${run.executionId}&limit=3&offset=10`)) as {
      results: { position: number; message_type: string; message_content: { msg_type: string } }[];
    };
    expect(page.results.map((x) => x.message_content.msg_type)).toEqual(page.results.map((x) => x.message_type));
    expect(
      (messages as unknown as { message_content: { execution_id: string } }[]).every(
        (x) => x.message_content.execution_id === run.executionId,
      ),
    ).toBe(true);
    expect(await json('/api/logs/?level=ERROR')).toHaveLength(1);
    const agents = (await json('/api/systemagents/')) as { instance_name: string }[];
    expect(agents.map((a) => a.instance_name).sort()).toEqual([...run.agents].sort());
    expect(await json(`/api/systemagents/${run.workers[0]}/`)).toMatchObject({ agent_type: 'PanDA-worker' });
    expect(await json('/api/tf-slices/counts/?run_number=100010')).toMatchObject({
      total: run.expected.slices_created,
      failed: 1,
    });
    expect(await json(`/api/machines/?execution_id=${run.executionId}`)).toMatchObject({
      machine_hash: expect.any(String),
      definitions: { run: { id: 'run' } },
    });
  });

  it('answers an unknown id with 404 and a bad filter value with 400, each a JSON error saying what was wrong', async () => {
    const missing = await get(m.url, '/api/run-states/999999/');
    expect(missing.status).toBe(404);
    expect(missing.json).toEqual({ detail: 'no RunState for run 999999', code: 'NOT_FOUND' });
    expect((await get(m.url, '/api/workflow-executions/nope/')).status).toBe(404);
    expect((await get(m.url, '/api/nothing-here/')).status).toBe(404);
    const bad = await get(m.url, '/api/tf-slices/?status=done');
    expect(bad.status).toBe(400);
    expect(bad.json).toEqual({
      detail: 'status must be one of queued, processing, completed, failed, got "done"',
      code: 'VALIDATION',
      field: 'status',
    });
    expect((await get(m.url, '/api/tf-slices/?colour=red')).json).toMatchObject({
      detail: expect.stringContaining('unknown query parameter "colour"'),
    });
    expect((await get(m.url, '/api/runs/1e3/')).status).toBe(400);
    expect((await get(m.url, '/api/tf-slices/?offset=5')).json).toMatchObject({ field: 'offset' });
  });

  it('is read-only: other methods are 405, HEAD has no body', async () => {
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
      const r = await get(m.url, '/api/runs/', { method, body: '{}', headers: { 'Content-Type': 'application/json' } });
      expect(r.status).toBe(405);
      expect(r.headers.allow).toBe('GET, HEAD');
    }
    const head = await get(m.url, '/api/runs/', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
  });

  it('serves the page and its assets with a strict content security policy', async () => {
    const page = await get(m.url, '/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.text).not.toMatch(/https?:\/\//);
    for (const asset of ['/app.js', '/charts.js', '/style.css', '/favicon.svg']) {
      const r = await get(m.url, asset);
      expect(r.status, asset).toBe(200);
      expect(r.text).not.toMatch(/https?:\/\/(?!www\.w3\.org)/);
    }
  });
});

describe('GET /api/runs/{run}/timeline/', () => {
  const pick = (o: Record<string, unknown>): Record<string, unknown> =>
    Object.fromEntries(RUN_STATE_FIELDS.map((f) => [f, o[f]]));

  it('shows the run at its end without a position, as the RunState view does', async () => {
    const t = (await json(`/api/runs/${run.runNumber}/timeline/`)) as Record<string, unknown>;
    const state = (await json(`/api/run-states/${run.runNumber}/`)) as Record<string, unknown>;
    expect(t).toMatchObject({ run_number: run.runNumber, execution_id: run.executionId });
    expect(t.position).toBe(t.last_position);
    expect(pick(t.run_state as Record<string, unknown>)).toEqual(pick(state));
  });

  it("at a position in the middle, equals the projection's RunState folded up to that position", async () => {
    const t0 = (await json(`/api/runs/${run.runNumber}/timeline/`)) as {
      first_position: number;
      last_position: number;
    };
    const middle = Math.floor((t0.first_position + t0.last_position) / 2);
    const t = (await json(`/api/runs/${run.runNumber}/timeline/?position=${middle}`)) as Record<string, unknown>;
    expect(t.position).toBeLessThanOrEqual(middle);
    const db = openViewsDb(':memory:');
    const projector = await Projector.open(m.store, db);
    await projector.catchUp({ until: BigInt(middle) });
    expect(pick(t.run_state as Record<string, unknown>)).toEqual(pick(getRunState(db, run.runNumber)));
    db.close();
  });

  it('answers 400 for a position that is not one, 404 for an unknown run', async () => {
    const bad = await get(m.url, `/api/runs/${run.runNumber}/timeline/?position=soon`);
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ code: 'VALIDATION', detail: expect.stringMatching(/position must be/) });
    const unknown = await get(m.url, '/api/runs/999999/timeline/');
    expect(unknown.status).toBe(404);
  });
});

describe('typed errors over HTTP', () => {
  it('map to a status each: none of ours is a 500', () => {
    const statuses = ERROR_CODES.map((code) => statusOf(Object.assign(new IllegalStateError('x'), { code })));
    for (const s of statuses) expect([400, 404, 409, 503]).toContain(s);
    expect(statusOf(new IllegalStateError('already ended'))).toBe(409);
    expect(statusOf(new ConcurrencyError('moved'))).toBe(409);
    expect(statusOf(new Error('a bug'))).toBe(500);
  });
});
