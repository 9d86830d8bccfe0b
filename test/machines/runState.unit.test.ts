/**
 * The RunState rule for a slice the log has already made final: a `slice` message for it again (the recorded run
 * 100011's injected copy of its first slice) and a result after its final state count nothing, in `runStateStep`
 * and in `RunStateFold` (time travel), as in the projection and the agent.
 */
import { describe, expect, it } from 'vitest';
import { openEventStore } from '../../src/eventStore/open.js';
import {
  RunStateFold,
  runIdOf,
  runStateStep,
  sliceNameOf,
  TODAYS_MACHINES,
  type RunStateInput,
} from '../../src/machines/runState.js';
import { fastParse } from '../../src/messages/fastParse.js';
import { parseEvent } from '../../src/messages/parse.js';
import { appendRunFixture } from '../helpers/runFixture.js';

const EXECUTION = 'stf_datataking-capture-0002';
const NAME = 'swf.100011.000001_tf_001_slice_000.tf';
const msg = (msg_type: string, content?: Record<string, unknown>): RunStateInput => ({
  kind: 'message',
  message: {
    msg_type,
    run_id: '100011',
    execution_id: EXECUTION,
    ...(content ? { content: { run_id: '100011', tf_filename: NAME, ...content } } : {}),
  },
});
const started = (): RunStateInput => ({
  kind: 'domain',
  type: 'WorkflowExecutionStarted',
  data: { execution_id: EXECUTION, parameter_values: { fast_processing: { max_slice_retries: 0 } } },
});
const processing = (): RunStateInput => ({
  kind: 'domain',
  type: 'SliceProcessingStarted',
  data: { run_id: '100011', tf_filename: NAME, attempt: 1, worker: 'w1', lease_deadline: null },
});
const slice = () => msg('slice', { attempt: 1, state: 'queued' });
const result = (state: 'done' | 'failed') =>
  msg('slice_result', { attempt: 1, state, result: state === 'failed' ? { error: 'boom' } : {} });

describe('the RunState rule for a slice already final', () => {
  it('RunStateFold: a repeated slice message and a late done result leave the failed slice failed, counted once', () => {
    const fold = new RunStateFold();
    for (const e of [started(), msg('run_imminent'), msg('start_run'), slice(), processing(), result('failed')])
      fold.apply(e);
    const failed = fold.run('100011')!.context;
    expect(failed).toMatchObject({ slices_created: 1, slices_failed: 1, slices_completed: 0, slices_queued: 0 });

    fold.apply(slice());
    fold.apply(processing());
    fold.apply(result('done'));
    expect(fold.run('100011')!.context).toMatchObject({
      slices_created: 1,
      slices_queued: 0,
      slices_processing: 0,
      slices_completed: 0,
      slices_failed: 1,
    });
  });

  it('runStateStep: a slice message for a known slice is not its first; a result after the final one is refused', () => {
    const params = { max_slice_retries: 0 };
    const created = runStateStep(slice(), undefined, params);
    expect(created.run).toEqual({ type: 'SLICE_CREATED' });
    const taken = runStateStep(processing(), created.slice!.after, params);
    const failed = runStateStep(result('failed'), taken.slice!.after, params);
    expect(failed.run).toEqual({ type: 'SLICE_FAILED', final: true });
    const final = failed.slice!.after;
    expect(TODAYS_MACHINES.slice.keyOf(final.value)).toBe('failed');

    expect(runStateStep(slice(), final, params)).toEqual({});
    const late = runStateStep(result('done'), final, params);
    expect(late.run).toBeUndefined();
    if (late.slice) expect(late.slice.refused).toBe(true);
  });
});

describe('RunStateFold keeps final slices by name only', () => {
  it('folds a run (retries, an expired lease, a late result, a final failure, repeats) as a fold keeping every snapshot', async () => {
    const store = await openEventStore('memory:');
    await appendRunFixture(store);
    const inputs: RunStateInput[] = [];
    for await (const e of store.readAll()) {
      const p = fastParse(e) ?? parseEvent(e);
      if (p) inputs.push(p);
    }
    await store.close();
    // then every slice event again: repeats of slice messages and results, most of them for final slices
    const repeats = inputs.filter((p) => sliceNameOf(p) !== undefined);
    const compact = new RunStateFold();
    // the same machines in another object: the fold keeps every snapshot
    const full = new RunStateFold({ ...TODAYS_MACHINES });
    const runIds = new Set<string>();
    for (const p of [...inputs, ...repeats]) {
      compact.apply(p);
      full.apply(p);
      const id = runIdOf(p);
      if (id !== undefined) runIds.add(id);
      for (const run of runIds) expect(compact.run(run)).toEqual(full.run(run));
    }
    const { live, final } = compact.sliceCounts;
    expect(final).toBeGreaterThan(0);
    expect(live + final).toBe(full.sliceCounts.live);
    expect(full.sliceCounts.final).toBe(0);
    const c = compact.run([...runIds][0]!)!.context;
    expect(c.slices_failed).toBeGreaterThan(0);
    expect(c.slices_retried).toBeGreaterThan(0);
  });
});
