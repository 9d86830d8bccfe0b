import { describe, expect, it } from 'vitest';
import { type FastProcessingAgent, fastProcessingAgent } from '../../src/agents/fastProcessingAgent.js';
import type { Output } from '../../src/agents/runtime.js';
import { countersAddUp, type RunContext } from '../../src/machines/index.js';
import { deriveId, domainEvent, type Slice, type SliceContent, stfFilename } from '../../src/messages/index.js';
import {
  AgentUnderTest,
  config,
  ctx,
  daq,
  EXECUTION,
  executionStarted,
  message,
  NAMESPACE,
  RUN,
  T0,
} from './harness.js';

const NAME = 'fast_processing-agent-test';
const WORKER = 'panda-worker-test-01';

/** The fast processing agent, given the execution (with these overrides), run_imminent and start_run. */
function fastProcessing(...set: string[]): AgentUnderTest<FastProcessingAgent> {
  return new AgentUnderTest(fastProcessingAgent({ name: NAME, type: 'Fast_Processing', namespace: NAMESPACE })).given(
    executionStarted(config(...set)),
    daq.runImminent(),
    daq.startRun(),
  );
}

/** FastMon's registration of TF sample `index` of STF 1. */
const sample = (index: number, tf_first: number, tf_count: number) =>
  message({
    msg_type: 'tf_file_registered',
    namespace: NAMESPACE,
    sender: 'fastmon-agent-test',
    execution_id: EXECUTION,
    run_id: RUN,
    created_at: new Date(T0 + 20_000).toISOString(),
    tf_filename: `swf.${RUN}.000001_tf_${String(index).padStart(3, '0')}.tf`,
    stf_filename: stfFilename(RUN, 1),
    tf_count,
    tf_first,
    tf_last: tf_first + tf_count - 1,
    file_size_bytes: tf_count * 2_000_000,
  });

const iso = (ms: number): string => new Date(ms).toISOString();

/** A worker takes a slice's attempt at `startedMs`, with a lease of `leaseMs`. */
const started = (c: SliceContent, startedMs = T0 + 30_000, leaseMs = 90_000, worker = WORKER) =>
  domainEvent(
    'SliceProcessingStarted',
    {
      run_id: c.run_id,
      execution_id: c.execution_id,
      namespace: NAMESPACE,
      slice_id: c.slice_id,
      tf_filename: c.tf_filename,
      fastmon_file: c.fastmon_file,
      attempt: c.attempt,
      worker,
      started_at: iso(startedMs),
      lease_deadline: iso(startedMs + leaseMs),
    },
    { id: deriveId('started', c.tf_filename, c.attempt, worker), namespace: NAMESPACE },
  );

/** A worker's slice_result for an attempt. */
const result = (c: SliceContent, state: 'done' | 'failed', attempt = c.attempt, worker = WORKER) =>
  message({
    msg_type: 'slice_result',
    namespace: NAMESPACE,
    sender: worker,
    execution_id: c.execution_id,
    run_id: c.run_id,
    created_at: new Date(T0 + 60_000).toISOString(),
    content: {
      slice_id: c.slice_id,
      tf_filename: c.tf_filename,
      attempt,
      state,
      hostname: 'localhost',
      result: { state: state === 'done', result: null, error: state === 'done' ? null : 'payload failed' },
    },
  });

const slicesOf = (outputs: readonly Output[]): SliceContent[] =>
  outputs.filter((o) => o.event.type === 'slice').map((o) => (o.event.data as Slice).content);

const runState = (a: AgentUnderTest<FastProcessingAgent>): RunContext => a.agent.runState(RUN)!;

/** A sample registered, and its slice messages played back as the log does; returns the outputs. */
const cut = (a: AgentUnderTest<FastProcessingAgent>, e: Parameters<typeof a.decide>[0]): Output[] => {
  const out = a.decide(e);
  expect(a.feed(out)).toEqual([]);
  return out;
};

describe('fast processing agent: slicing', () => {
  it('broadcasts run_imminent_worker with the worker parameters on run_imminent', () => {
    const a = new AgentUnderTest(fastProcessingAgent({ name: NAME, type: 'Fast_Processing', namespace: NAMESPACE }));
    a.given(executionStarted(config('fast_processing.target_worker_count=4')));
    const then = a.when(daq.runImminent()).appends('run_imminent_worker', 'agent_log');
    expect(then.outputs[0]!.stream).toBe(`fastproc-${RUN}`);
    expect(then.outputs[0]!.event.metadata).toMatchObject({ destination: '/topic/panda.workers' });
    expect(then.data<{ content: Record<string, unknown> }>('run_imminent_worker')[0]!.content).toMatchObject({
      run_id: RUN,
      execution_id: EXECUTION,
      target_worker_count: 4,
      core_count: 4,
      slice_processing_time: 30,
    });
    expect(runState(a)).toMatchObject({ phase: 'imminent', target_worker_count: 4 });
  });

  it.each([
    [22, 15],
    [15, 15],
    [45, 15],
    [100, 15],
    [37, 4],
  ])('cuts a sample of %i TFs into %i contiguous slices, the first tf_count mod n taking one TF more', (tfCount, n) => {
    const a = fastProcessing(`fast_processing.slices_per_sample=${n}`);
    const then = a.when(sample(1, 130, tfCount));
    // a slice counts when the log holds its message, not when it is decided
    expect(runState(a)).toMatchObject({ stf_samples_received: 1, slices_created: 0, slices_queued: 0 });
    a.feed(then.outputs);
    const slices = slicesOf(then.outputs);
    expect(slices).toHaveLength(n);
    const base = Math.floor(tfCount / n);
    const rest = tfCount % n;
    expect(slices.map((s) => s.tf_count)).toEqual(slices.map((_, i) => base + (i < rest ? 1 : 0)));
    expect(slices.map((s) => s.slice_id)).toEqual([...Array(n).keys()]);
    expect(slices[0]!.start).toBe(130);
    expect(slices[n - 1]!.end).toBe(130 + tfCount - 1);
    for (let i = 1; i < n; i++) expect(slices[i]!.start).toBe(slices[i - 1]!.end + 1);
    for (const s of slices) {
      expect(s.tf_filename).toBe(`swf.${RUN}.000001_tf_001_slice_${String(s.slice_id).padStart(3, '0')}.tf`);
      expect(s).toMatchObject({ fastmon_file: `swf.${RUN}.000001_tf_001.tf`, attempt: 1, state: 'queued' });
    }
    expect(then.outputs.every((o) => o.stream === `slices-${RUN}`)).toBe(true);
    expect(runState(a)).toMatchObject({ stf_samples_received: 1, slices_created: n, slices_queued: n });
  });
});

describe('fast processing agent: retries and leases', () => {
  it('re-queues a failed slice with attempt + 1 until max_slice_retries, then fails it for good', () => {
    const a = fastProcessing();
    let slice = slicesOf(cut(a, sample(1, 0, 15)))[0]!;
    const first = slice;
    for (let attempt = 1; attempt <= 3; attempt++) {
      expect(a.decide(started(slice))).toEqual([]);
      const retried = slicesOf(a.decide(result(slice, 'failed')));
      expect(retried).toHaveLength(1);
      expect(retried[0]!).toMatchObject({ ...first, attempt: attempt + 1, req_id: expect.any(String) as string });
      expect(retried[0]!.req_id).not.toBe(slice.req_id);
      slice = retried[0]!;
    }
    a.decide(started(slice));
    const then = a.when(result(slice, 'failed'));
    then.appends('agent_log');
    expect(then.data<{ message: string; levelname: string }>('agent_log')[0]).toMatchObject({
      levelname: 'WARNING',
      message: expect.stringMatching(/failed for good after 4 attempts/) as string,
    });
    expect(runState(a)).toMatchObject({ slices_failed: 1, slices_retried: 3, slices_completed: 0 });
    // A final slice takes no more results.
    a.when(result(slice, 'done')).nothing();
    expect(runState(a).slices_completed).toBe(0);
  });

  it('allows max_slice_retries + 1 attempts as configured', () => {
    const a = fastProcessing('fast_processing.max_slice_retries=1');
    const slice = slicesOf(cut(a, sample(1, 0, 15)))[0]!;
    a.decide(started(slice));
    const retry = slicesOf(a.decide(result(slice, 'failed')))[0]!;
    expect(retry.attempt).toBe(2);
    a.decide(started(retry));
    expect(slicesOf(a.decide(result(retry, 'failed')))).toEqual([]);
    expect(runState(a)).toMatchObject({ slices_failed: 1, slices_retried: 1 });
  });

  it('records an expired lease at its deadline, counts it as a failed attempt and re-queues the slice', () => {
    const a = fastProcessing();
    const slice = slicesOf(cut(a, sample(1, 0, 15)))[0]!;
    const startMs = T0 + 30_000;
    a.decide(started(slice, startMs, 90_000));
    const deadline = startMs + 90_000;
    expect(a.agent.nextDeadline!()).toBe(deadline);
    expect(a.agent.onDeadline!(deadline - 1, ctx())).toEqual([]);

    const expired = a.agent.onDeadline!(deadline, ctx(120));
    expect(expired.map((o) => o.event.type)).toEqual(['SliceLeaseExpired']);
    expect(expired[0]!.stream).toBe(`fastproc-${RUN}`);
    expect(expired[0]!.event.data).toMatchObject({ tf_filename: slice.tf_filename, attempt: 1, worker: WORKER });
    // Written once: until it comes back through the log there is no second expiry and no deadline to wait for.
    expect(a.agent.onDeadline!(deadline + 1000, ctx())).toEqual([]);
    expect(a.agent.nextDeadline!()).toBeUndefined();

    const retried = slicesOf(a.feed(expired));
    expect(retried).toEqual([expect.objectContaining({ tf_filename: slice.tf_filename, attempt: 2 })]);
    expect(runState(a)).toMatchObject({ slices_retried: 1, slices_processing: 0, slices_queued: 15 });
  });

  it('ignores a late result for the attempt whose lease expired', () => {
    const a = fastProcessing();
    const slice = slicesOf(cut(a, sample(1, 0, 15)))[0]!;
    a.decide(started(slice, T0, 90_000));
    const retry = slicesOf(a.feed(a.agent.onDeadline!(T0 + 90_000, ctx())))[0]!;
    const before = runState(a);

    a.when(result(slice, 'done', 1)).nothing();
    expect(runState(a)).toEqual(before);

    // The retry's own result counts.
    a.decide(started(retry, T0 + 100_000, 90_000, 'panda-worker-test-02'));
    a.when(result(retry, 'done', 2, 'panda-worker-test-02'));
    expect(runState(a)).toMatchObject({ slices_completed: 1, slices_retried: 1, slices_failed: 0 });
  });

  it('fails a slice for good when the lease of its last attempt expires', () => {
    const a = fastProcessing('fast_processing.max_slice_retries=0');
    const slice = slicesOf(cut(a, sample(1, 0, 15)))[0]!;
    a.decide(started(slice, T0, 90_000));
    const then = a.feed(a.agent.onDeadline!(T0 + 90_000, ctx()));
    expect(then.map((o) => o.event.type)).toEqual(['agent_log']);
    expect(runState(a)).toMatchObject({ slices_failed: 1, slices_retried: 0 });
  });

  it('ignores a result for an attempt the slice is not on', () => {
    const a = fastProcessing();
    const slice = slicesOf(cut(a, sample(1, 0, 15)))[0]!;
    a.decide(started(slice));
    a.when(result(slice, 'done', 2)).nothing();
    expect(runState(a)).toMatchObject({ slices_completed: 0, slices_processing: 1 });
  });
});

describe('fast processing agent: the end of a run', () => {
  /** A run with one 3-slice sample; returns the slices. */
  const threeSlices = () => {
    // one TF sample per STF: STF 1's sample is all FastMon owes the run
    const a = fastProcessing('fast_processing.slices_per_sample=3', 'fast_processing.tf_files_per_stf=1');
    const slices = slicesOf(cut(a, sample(1, 0, 20)));
    return { a, slices };
  };
  const complete = (a: AgentUnderTest<FastProcessingAgent>, s: SliceContent): Output[] => {
    a.decide(started(s));
    return a.decide(result(s, 'done'));
  };

  it('does not finish a run while FastMon still owes it samples (an agent that joined late read end_run first)', () => {
    const a = fastProcessing('fast_processing.slices_per_sample=3', 'fast_processing.tf_files_per_stf=2');
    a.decide(daq.stfGen(1));
    const first = slicesOf(cut(a, sample(1, 0, 20)));
    for (const s of first) complete(a, s);
    // end_run with every slice so far final, but STF 1's second sample not registered yet
    expect(a.decide(daq.endRun(1)).map((o) => o.event.type)).toEqual(['end_run', 'agent_log']);
    expect(a.agent.isFinished(RUN)).toBe(false);
    const second = slicesOf(cut(a, sample(2, 20, 20)));
    expect(complete(a, second[0]!)).toEqual([]);
    expect(complete(a, second[1]!)).toEqual([]);
    expect(complete(a, second[2]!).map((o) => o.event.type)).toEqual(['RunFinished', 'agent_log']);
    expect(a.agent.isFinished(RUN)).toBe(true);
  });

  it('records RunFinished only once end_run has come and every slice is final', () => {
    const { a, slices } = threeSlices();
    a.decide(daq.stfGen(1));
    expect(complete(a, slices[0]!)).toEqual([]);

    const ended = a.when(daq.endRun(1)).appends('end_run', 'agent_log');
    expect(ended.outputs[0]!.stream).toBe(`fastproc-${RUN}`);
    expect(ended.data<{ content: unknown }>('end_run')[0]!.content).toEqual({
      run_id: RUN,
      execution_id: EXECUTION,
      total_stf_files: 1,
    });
    expect(complete(a, slices[1]!)).toEqual([]);

    const last = complete(a, slices[2]!);
    expect(last.map((o) => o.event.type)).toEqual(['RunFinished', 'agent_log']);
    expect(last[0]!.stream).toBe(`fastproc-${RUN}`);
    expect(last[0]!.event.data).toMatchObject({
      run_id: RUN,
      execution_id: EXECUTION,
      stf_files: 1,
      stf_samples_received: 1,
      slices_created: 3,
      slices_completed: 3,
      slices_failed: 0,
      slices_retried: 0,
    });
  });

  it('records RunFinished on end_run when every slice is already final', () => {
    const { a, slices } = threeSlices();
    for (const s of slices) expect(complete(a, s)).toEqual([]);
    a.when(daq.endRun(1)).appends('end_run', 'agent_log', 'RunFinished', 'agent_log');
  });

  it('counts a slice failed for good as final', () => {
    const { a, slices } = threeSlices();
    complete(a, slices[0]!);
    complete(a, slices[1]!);
    a.decide(daq.endRun(1));
    let s = slices[2]!;
    let out: Output[] = [];
    for (let attempt = 1; attempt <= 4; attempt++) {
      a.decide(started(s));
      out = a.decide(result(s, 'failed'));
      if (attempt < 4) s = slicesOf(out)[0]!;
    }
    expect(out.map((o) => o.event.type)).toEqual(['agent_log', 'RunFinished', 'agent_log']);
    expect(out[1]!.event.data).toMatchObject({ slices_completed: 2, slices_failed: 1, slices_retried: 3 });
  });

  it('does not finish a run on end_run while slices it decided are not yet in the log', () => {
    const a = fastProcessing('fast_processing.slices_per_sample=3');
    const decided = a.decide(sample(1, 0, 20));
    a.when(daq.endRun(1)).appends('end_run', 'agent_log');
    a.feed(decided);
    expect(runState(a)).toMatchObject({ slices_created: 3, slices_queued: 3 });
    const slices = slicesOf(decided);
    for (const s of slices.slice(0, 2)) expect(complete(a, s)).toEqual([]);
    expect(complete(a, slices[2]!).map((o) => o.event.type)).toEqual(['RunFinished', 'agent_log']);
  });

  it('finishes a run without slices on end_run', () => {
    const a = fastProcessing();
    a.when(daq.endRun(0)).appends('end_run', 'agent_log', 'RunFinished', 'agent_log');
  });

  it('refuses stf_gen after end_run and records it as RunTransitionRefused', () => {
    const { a } = threeSlices();
    a.decide(daq.endRun(0));
    const stf = a.log.store(`run-${RUN}`, daq.stfGen(2));
    const then = a.when(stf).appends('RunTransitionRefused', 'agent_log');
    expect(then.outputs[0]!.stream).toBe(`fastproc-${RUN}`);
    expect(then.data('RunTransitionRefused')[0]).toEqual({
      agent: NAME,
      run_id: RUN,
      msg_type: 'stf_gen',
      state: 'completed',
      reason: expect.stringMatching(/after end_run/) as string,
      original_event_id: stf.id,
    });
    expect(runState(a)).toMatchObject({ phase: 'completed', stf_files: 0 });
  });

  it.each([
    ['a second start_run in physics', () => [daq.startRun()], 'start_run', 'physics'],
    ['resume_run while in physics', () => [daq.resumeRun()], 'resume_run', 'physics'],
    ['stf_gen during standby', () => [daq.pauseRun(), daq.stfGen(1)], 'stf_gen', 'standby'],
    ['a second end_run', () => [daq.endRun(0), daq.endRun(0)], 'end_run', 'completed'],
  ])('refuses %s', (_what, events, msgType, phase) => {
    const a = fastProcessing();
    const all = events();
    a.given(...all.slice(0, -1));
    const then = a.when(all[all.length - 1]!).appends('RunTransitionRefused', 'agent_log');
    expect(then.data('RunTransitionRefused')[0]).toMatchObject({ msg_type: msgType, state: phase });
  });

  it('keeps queued + processing + completed + failed = created at every step', () => {
    const a = fastProcessing('fast_processing.max_slice_retries=1');
    const check = (): void => {
      const c = runState(a);
      expect(countersAddUp(c), JSON.stringify(c)).toBe(true);
    };
    const queue = [...slicesOf(cut(a, sample(1, 0, 30))), ...slicesOf(cut(a, sample(2, 200, 30)))];
    check();
    let step = 0;
    let startMs = T0;
    while (queue.length > 0) {
      const s = queue.shift()!;
      a.decide(started(s, (startMs += 1000), 90_000));
      check();
      // Every third attempt fails, every fifth one's lease expires; the rest succeed.
      step++;
      const out =
        step % 5 === 0
          ? a.feed(a.agent.onDeadline!(startMs + 90_000, ctx()))
          : a.decide(result(s, step % 3 === 0 ? 'failed' : 'done'));
      check();
      queue.push(...slicesOf(out));
      if (step === 20) a.decide(daq.endRun(1));
    }
    const c = runState(a);
    expect(c.slices_queued + c.slices_processing).toBe(0);
    expect(c.slices_completed + c.slices_failed).toBe(30);
    expect(c.slices_failed).toBeGreaterThan(0);
  });
});

describe('fast processing agent: memory', () => {
  it('holds a record only for slices taken and not final, and lets a sample go once its slices are all taken', () => {
    const a = fastProcessing();
    const queued = Array.from({ length: 20 }, (_, i) => slicesOf(cut(a, sample(i + 1, 0, 15)))).flat();
    expect(queued).toHaveLength(300);
    expect(a.agent.held()).toEqual({ runs: 1, samples: 20, slices: 0 });

    const firstSample = queued.slice(0, 15);
    for (const s of firstSample.slice(0, 3)) a.decide(started(s));
    expect(a.agent.held()).toEqual({ runs: 1, samples: 20, slices: 3 });
    expect(runState(a)).toMatchObject({ slices_processing: 3, slices_queued: 297 });

    // A failed attempt waits for its retry as a record; a completed slice is forgotten.
    const failed = a.decide(result(firstSample[0]!, 'failed'));
    a.feed(failed);
    const retry = slicesOf(failed)[0]!;
    a.decide(result(firstSample[1]!, 'done'));
    a.decide(result(firstSample[2]!, 'done'));
    expect(a.agent.held()).toEqual({ runs: 1, samples: 20, slices: 1 });

    for (const s of [retry, ...firstSample.slice(3)]) {
      a.decide(started(s));
      a.decide(result(s, 'done'));
    }
    expect(a.agent.held()).toEqual({ runs: 1, samples: 19, slices: 0 });
    expect(runState(a)).toMatchObject({ slices_completed: 15, slices_queued: 285, slices_processing: 0 });

    // A worker reporting a slice that is already final, or one never queued, changes nothing.
    a.when(started(firstSample[4]!)).nothing();
    a.when(
      started({ ...firstSample[4]!, tf_filename: `swf.${RUN}.000001_tf_001_slice_099.tf`, slice_id: 99 }),
    ).nothing();
    expect(runState(a)).toMatchObject({ slices_completed: 15, slices_queued: 285, slices_processing: 0 });
    expect(a.agent.held()).toEqual({ runs: 1, samples: 19, slices: 0 });
  });

  it('rebuilds the same holdings when it folds its history again', () => {
    const live = fastProcessing();
    const slices = [sample(1, 0, 15), sample(2, 100, 15)].flatMap((h) => slicesOf(cut(live, h)));
    for (const e of [started(slices[0]!), result(slices[0]!, 'done'), started(slices[16]!)]) live.decide(e);
    const again = fastProcessing();
    // the log as the live agent saw it after the same givens, its own slice messages included
    for (const e of live.log.events.slice(again.log.events.length)) again.decide(e, { ...ctx(), replaying: true });
    expect(again.agent.held()).toEqual(live.agent.held());
    expect(again.agent.held()).toEqual({ runs: 1, samples: 2, slices: 1 });
    expect(runState(again)).toEqual(runState(live));
  });
});
