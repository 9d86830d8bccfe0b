/**
 * Time travel, run bundles and the determinism check on one real run (runWorkflow, virtual time, SQLite file).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fastProcessingAgent } from '../../src/agents/fastProcessingAgent.js';
import type { Agent, AgentIdentity } from '../../src/agents/runtime.js';
import type { RunSummary } from '../../src/agents/workflow.js';
import { swfIn } from '../helpers/cli.js';
import { runInto } from '../helpers/runs.js';
import { openEventStore } from '../../src/eventStore/open.js';
import { checkRun } from '../../src/replay/check.js';
import { locateRun } from '../../src/replay/runEvents.js';

const dir = mkdtempSync(join(tmpdir(), 'swf-replay-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const source = `sqlite:${join(dir, 'source.db')}`;
let summary: RunSummary;

const swf = (...argv: string[]) => swfIn(dir, ...argv);

const withoutPositions = (json: string): unknown => {
  const v = JSON.parse(json) as { position?: number; last_message?: { position?: number } };
  delete v.position;
  delete v.last_message?.position;
  return v;
};

beforeAll(async () => {
  // A small run: 4 STFs, 5 slices per TF sample.
  summary = await runInto(source, ['fast_processing.stf_count=4', 'fast_processing.slices_per_sample=5']);
}, 60_000);

describe('swf replay (time travel)', () => {
  it('without --at gives the end of the run: the counters the run itself reported', async () => {
    const r = await swf('replay', String(summary.run_number), '--store', source, '--json');
    expect(r.code).toBe(0);
    const v = JSON.parse(r.out) as {
      run_number: number;
      position: number;
      run_state: Record<string, unknown>;
      slices: Record<string, number>;
    };
    expect(v.run_number).toBe(summary.run_number);
    expect(typeof v.position).toBe('number');
    expect(v.run_state).toMatchObject({
      phase: 'completed',
      slices_created: summary.slices.created,
      slices_completed: summary.slices.completed,
      slices_failed: summary.slices.failed,
    });
    expect(v.slices).toEqual({
      queued: 0,
      processing: 0,
      completed: summary.slices.completed,
      failed: summary.slices.failed,
    });
  });

  it('--at a position folds the events up to it, and the counters add up there', async () => {
    const end = JSON.parse((await swf('replay', String(summary.run_number), '--store', source, '--json')).out) as {
      position: number;
    };
    const mid = Math.floor(end.position / 2);
    const r = await swf('replay', String(summary.run_number), '--store', source, '--json', '--at', String(mid));
    const v = JSON.parse(r.out) as {
      position: number;
      run_state: Record<string, number>;
      slices: Record<string, number>;
    };
    expect(v.position).toBeLessThanOrEqual(mid);
    const s = v.slices;
    expect(s.queued! + s.processing! + s.completed! + s.failed!).toBe(v.run_state.slices_created);
    expect(v.run_state.slices_created).toBeGreaterThan(0);
    expect(s.completed).toBeLessThan(summary.slices.completed);
  });

  it('--at an ISO time uses the workflow clock: before run_imminent nothing has happened', async () => {
    const v = JSON.parse(
      (await swf('replay', String(summary.run_number), '--store', source, '--json', '--at', '2000-01-01T00:00:00Z'))
        .out,
    ) as {
      run_state: { phase: string; slices_created: number };
    };
    expect(v.run_state).toMatchObject({ phase: 'initializing', slices_created: 0 });
  });

  it('an unknown run is a clear error with exit code 3', async () => {
    const r = await swf('replay', '999999', '--store', source);
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/run 999999 not found/);
  });

  it('a bad --at is exit code 2', async () => {
    expect((await swf('replay', String(summary.run_number), '--store', source, '--at', 'yesterday')).code).toBe(2);
  });
});

describe('swf export / swf import', () => {
  it("round trip: the imported run replays identically (positions are the target store's)", async () => {
    const exported = await swf('export', String(summary.run_number), '--store', source);
    expect(exported.code).toBe(0);
    const lines = exported.out.trimEnd().split('\n');
    const header = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(header).toMatchObject({
      format: 'swf-es-run-bundle',
      version: 1,
      run_number: summary.run_number,
      execution_id: summary.execution_id,
      events: lines.length - 1,
    });
    const file = join(dir, 'run.ndjson');
    writeFileSync(file, exported.out);
    const target = `sqlite:${join(dir, 'target.db')}`;
    expect((await swf('import', file, '--store', target)).code).toBe(0);
    const a = await swf('replay', String(summary.run_number), '--store', source, '--json');
    const b = await swf('replay', String(summary.run_number), '--store', target, '--json');
    expect(withoutPositions(b.out)).toEqual(withoutPositions(a.out));
    expect((await swf('replay', String(summary.run_number), '--store', target, '--check')).code).toBe(0);
    // The target's next run must come after the imported one.
    const store = await openEventStore(target);
    try {
      await expect(locateRun(store, summary.run_number)).resolves.toMatchObject({ execution_id: summary.execution_id });
    } finally {
      await store.close();
    }

    const again = await swf('import', file, '--store', target);
    expect(again.code).toBe(4);
    expect(again.err).toMatch(/already holds run number .*--renumber/);
  });

  it('a damaged or foreign file is refused and nothing is stored', async () => {
    const exported = (await swf('export', String(summary.run_number), '--store', source)).out;
    const lines = exported.trimEnd().split('\n');
    const cases = {
      truncated: lines.slice(0, 10).join('\n'),
      'bad json': [...lines.slice(0, 5), '{"id": oops', ...lines.slice(6)].join('\n'),
      'bad event': [
        ...lines.slice(0, 5),
        lines[5]!.replace(/"namespace":"[^"]*"/g, '"namespace":""'),
        ...lines.slice(6),
      ].join('\n'),
      foreign: '{"hello":"world"}\n',
    };
    for (const [name, text] of Object.entries(cases)) {
      const file = join(dir, `${name.replace(' ', '-')}.ndjson`);
      writeFileSync(file, text);
      const target = `sqlite:${join(dir, `${name.replace(' ', '-')}.db`)}`;
      const r = await swf('import', file, '--store', target);
      expect(r.code, name).toBe(2);
      expect(r.err, name).toMatch(/line \d+/);
      const events = await swf('events', 'read', '--store', target, '--json');
      expect(events.out.trim(), name).toBe('');
    }
  });
});

describe('swf replay --check', () => {
  it('agrees with the recorded run', async () => {
    const r = await swf('replay', String(summary.run_number), '--store', source, '--check');
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toMatch(/deterministic/);
  });

  it('catches a changed slicing rule: one slice fewer per sample', async () => {
    const cutOneFewer = (identity: AgentIdentity): Agent => {
      const inner = fastProcessingAgent(identity);
      return {
        ...inner,
        handle(event, parsed, ctx) {
          const out = inner.handle(event, parsed, ctx);
          if (event.type !== 'tf_file_registered') return out;
          const slices = out.filter((o) => o.event.type === 'slice');
          return out.filter((o) => o !== slices[slices.length - 1]);
        },
      };
    };
    const store = await openEventStore(source);
    try {
      const info = await locateRun(store, summary.run_number);
      const result = await checkRun(store, info, { factories: { fast_processing: cutOneFewer } });
      expect(result.ok).toBe(false);
      expect(result.divergence).toMatchObject({
        agent: expect.stringMatching(/^fast_processing-agent-/),
        kind: 'missing',
        input: { type: 'tf_file_registered' },
        recomputed: null,
      });
      expect(result.divergence?.recorded).toMatchObject({ type: 'slice' });
    } finally {
      await store.close();
    }
  });
});
