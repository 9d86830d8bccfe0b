/**
 * The fast processing agent (DESIGN.md semantics 5-7). It keeps the run machine (RunState) of each run and the
 * slice machine of each slice, folded from the log with the machines' fast path:
 *
 * - lifecycle messages drive the run; an illegal one is refused and recorded (`RunTransitionRefused`);
 * - each TF sample is cut into `slices_per_sample` slices, each queued as a `slice` message;
 * - a worker's `SliceProcessingStarted` starts a slice's attempt (with a lease deadline); its `slice_result`
 *   completes or fails it; a failed attempt is retried with a new `slice` message (attempt + 1) while retries
 *   are left; a lease that passes its deadline is recorded as `SliceLeaseExpired` (a failed attempt);
 * - when the run is completed and every slice is final, it records `RunFinished`.
 *
 * Every change of state comes from an event in the log, its own `SliceLeaseExpired` included, so folding the
 * log again rebuilds exactly the same state.
 */
import { NotFoundError } from '../errors.js';
import type { StoredEvent } from '../eventStore/eventStore.js';
import {
  type CompiledMachine,
  type FastSnapshot,
  fastRun,
  fastSlice,
  isFinished,
  refusalOf,
  type RunContext,
  type RunEvent,
  RUN_STATE_EVENT_TYPES,
  runStateStep,
  type SliceContext,
  type SliceEvent,
  type SliceInput,
} from '../machines/index.js';
import {
  deriveId,
  domainEvent,
  fileStem,
  type ParsedEvent,
  type Slice,
  type SliceSpec,
  sliceSample,
  LEGACY_WORKER_PREFIX,
  rateToMillionths,
  STREAM_PREFIXES,
  streams,
} from '../messages/index.js';
import { common, ExecutionParameters, send } from './common.js';
import { idsOf } from './dataAgent.js';
import { type Agent, type AgentIdentity, type HandleContext, logLine, type Output } from './runtime.js';

interface RunRecord {
  execution_id: string;
  run_id: string;
  snapshot: FastSnapshot<RunContext>;
  finished: boolean;
  /** Slices decided (their samples registered) whose `slice` message the log does not hold yet. */
  pending: number;
}

interface SliceRecord {
  run_id: string;
  /** The slice machine, from its first `slice` message in the log on (the RunState rule, `runState.ts`). */
  snapshot: FastSnapshot<SliceContext> | undefined;
  max_retries: number;
  /** The first `slice` message's content; retries copy it with the next attempt. */
  content: Slice['content'];
  /** Lease deadline (clock ms) while processing. */
  deadline?: number;
  /** Set once a SliceLeaseExpired for the current attempt was written, until it comes back through the log. */
  expiring?: number;
}

/**
 * A TF sample whose slices are not all taken by a worker yet. A slice waiting for its first attempt needs no record
 * of its own (its content follows from the sample, its machine is the slice machine's initial state), so a run with
 * a long queue holds one of these per sample, not one record per slice (docs/run.md "Memory").
 */
interface SampleRecord {
  run_id: string;
  execution_id: string;
  stf_filename: string;
  tf_filename: string;
  tf_first: number;
  tf_count: number;
  /** Per slice_id: DECIDED (its `slice` message not in the log yet), QUEUED (in the log, untaken) or 0 (taken). */
  untaken: Uint8Array;
  left: number;
}
const DECIDED = 1;
const QUEUED = 2;

/** `<sample stem>_slice_<NNN>.tf` (sliceFilename): the sample's stem and the slice_id. */
const SLICE_NAME = /^(.*)_slice_([0-9]{3,})\.tf$/;

export interface FastProcessingAgent extends Agent {
  /** RunState of a run (for the composition root's progress display and summary). */
  runState(runId: string): RunContext | undefined;
  /** Whether the run is finished: data taking ended and every slice is final (its RunFinished is due or written). */
  isFinished(runId: string): boolean;
  /** How much it holds: runs, samples with untaken slices, taken slices not final (docs/run.md "Memory"). */
  held(): { runs: number; samples: number; slices: number };
}

export interface FastProcessingOptions {
  /** Told of every run machine transition the agent takes (refused events aside), e.g. for the Stately inspector. */
  onRunTransition?: (runId: string, event: RunEvent, snapshot: FastSnapshot<RunContext>) => void;
  /** The rules to fold with (default: today's machines); `compileRecorded` gives a run's recorded ones. */
  machines?: {
    run: CompiledMachine<RunContext, RunEvent>;
    slice: CompiledMachine<SliceContext, SliceEvent, SliceInput>;
  };
}

export function fastProcessingAgent(identity: AgentIdentity, options: FastProcessingOptions = {}): FastProcessingAgent {
  const parameters = new ExecutionParameters();
  const runs = new Map<string, RunRecord>();
  const slices = new Map<string, SliceRecord>();
  const samples = new Map<string, SampleRecord>();
  const processing = new Set<SliceRecord>();
  const ownExecutions = new Set<string>();
  const runMachine = options.machines?.run ?? fastRun;
  const sliceMachine = options.machines?.slice ?? fastSlice;
  const rules = { run: runMachine, slice: sliceMachine };

  const stepRun = (run: RunRecord, event: RunEvent): { refused?: string } => {
    const before = run.snapshot;
    run.snapshot = runMachine.next(before, event);
    const refusal = refusalOf(before, run.snapshot);
    if (refusal) return { refused: refusal.reason };
    options.onRunTransition?.(run.run_id, event, run.snapshot);
    return {};
  };

  const fpConfig = (executionId: string) => {
    const config = parameters.get(executionId);
    if (!config) throw new NotFoundError(`execution ${executionId}: its WorkflowExecutionStarted was never seen`);
    return config.fast_processing;
  };

  function sliceMessage(
    record: SliceRecord,
    attempt: number,
    cause: StoredEvent,
    ctx: HandleContext,
    ...purpose: (string | number)[]
  ): Output {
    const c = { ...record.content, attempt, req_id: deriveId(cause.id, 'req', record.content.tf_filename, attempt) };
    return send(
      {
        msg_type: 'slice',
        ...common(agent, { execution_id: c.execution_id, run_id: c.run_id }, ctx.now),
        content: c,
      },
      cause,
      ...purpose,
    );
  }

  /**
   * Whether TF samples of the run's STFs are still to come, in a run our DAQ drives (its FastMon samples exactly
   * ⌊n·R⌋ of n STFs, `tf_files_per_stf` each). An agent that joins a run late can read end_run before FastMon, also
   * catching up, has registered the samples: the run is not finished until they are in (and their slices final).
   */
  function samplesDue(run: RunRecord): boolean {
    if (!ownExecutions.has(run.execution_id)) return false;
    const fp = parameters.get(run.execution_id)?.fast_processing;
    if (!fp) return false;
    const c = run.snapshot.context;
    const sampled = Math.floor((c.stf_files * rateToMillionths(fp.stf_sampling_rate)) / 1_000_000);
    return c.stf_samples_received < sampled * fp.tf_files_per_stf;
  }

  /** Records the run's end once every slice is final. */
  function finishIfDone(run: RunRecord, cause: StoredEvent, ctx: HandleContext): Output[] {
    // slices decided but not yet in the log are not final, though the run's counters do not hold them yet
    if (run.finished || run.pending > 0 || !isFinished(run.snapshot)) return [];
    if (samplesDue(run)) return [];
    run.finished = true;
    if (ctx.replaying) return [];
    const c = run.snapshot.context;
    return [
      {
        stream: streams.fastproc(run.run_id),
        event: domainEvent(
          'RunFinished',
          {
            run_id: run.run_id,
            execution_id: run.execution_id,
            namespace: identity.namespace,
            finished_at: ctx.now,
            stf_files: c.stf_files,
            stf_samples_received: c.stf_samples_received,
            slices_created: c.slices_created,
            slices_completed: c.slices_completed,
            slices_failed: c.slices_failed,
            slices_retried: c.slices_retried,
          },
          { id: deriveId(run.run_id, run.execution_id, 'run-finished'), namespace: identity.namespace, cause },
        ),
      },
      logLine(
        agent,
        'info',
        `run ${run.run_id} finished: ${c.slices_completed} slices completed, ${c.slices_failed} failed, ${c.slices_retried} retried`,
        { cause, purpose: 'finished', now: ctx.now, executionId: run.execution_id, runId: run.run_id },
      ),
    ];
  }

  function lifecycle(
    event: StoredEvent,
    parsed: Extract<ParsedEvent, { kind: 'message' }>,
    ctx: HandleContext,
  ): Output[] {
    const m = parsed.message;
    if (m.msg_type === 'agent_heartbeat' || m.msg_type === 'agent_log') return [];
    const target = m.msg_type === 'run_imminent' ? fpConfig(m.execution_id).target_worker_count : undefined;
    const runEvent = runStateStep(parsed, undefined, {
      max_slice_retries: 0,
      ...(target !== undefined ? { target_worker_count: target } : {}),
    }).run;
    if (!runEvent) return [];
    let run = runs.get(m.run_id);
    if (!run) {
      run = {
        execution_id: m.execution_id,
        run_id: m.run_id,
        snapshot: runMachine.initial(),
        finished: false,
        pending: 0,
      };
      runs.set(m.run_id, run);
    }
    const ids = { execution_id: m.execution_id, run_id: m.run_id };
    const { refused } = stepRun(run, runEvent);
    if (refused) {
      return [
        {
          stream: streams.fastproc(m.run_id),
          event: domainEvent(
            'RunTransitionRefused',
            {
              agent: agent.name,
              run_id: m.run_id,
              msg_type: m.msg_type,
              state: run.snapshot.context.phase,
              reason: refused,
              original_event_id: event.id,
            },
            { id: deriveId(event, 'refused', agent.name), namespace: identity.namespace, cause: event },
          ),
        },
        logLine(agent, 'warning', `run ${m.run_id}: ${m.msg_type} refused: ${refused}`, {
          cause: event,
          purpose: 'refused',
          now: ctx.now,
          ...idsOf(ids),
        }),
      ];
    }
    const out: Output[] = [];
    if (m.msg_type === 'run_imminent') {
      const fp = fpConfig(m.execution_id);
      const { msg_type: _t, sender: _s, ...body } = m;
      out.push(
        send(
          {
            msg_type: 'run_imminent_worker',
            ...common(agent, ids, ctx.now),
            content: {
              ...body,
              run_id: m.run_id,
              execution_id: m.execution_id,
              core_count: fp.target_worker_count,
              target_worker_count: fp.target_worker_count,
              slice_processing_time: fp.slice_processing_time,
              worker_rampup_time: fp.worker_rampup_time,
              worker_rampdown_time: fp.worker_rampdown_time,
            },
          },
          event,
          'run_imminent_worker',
        ),
        logLine(agent, 'info', `run ${m.run_id} imminent: ${fp.target_worker_count} workers requested`, {
          cause: event,
          purpose: 'imminent',
          now: ctx.now,
          ...idsOf(ids),
        }),
      );
    } else if (m.msg_type === 'end_run' && !('content' in m)) {
      out.push(
        send(
          {
            msg_type: 'end_run',
            ...common(agent, ids, ctx.now),
            content: { run_id: m.run_id, execution_id: m.execution_id, total_stf_files: m.total_stf_files },
          },
          event,
          'worker_end_run',
        ),
        logLine(agent, 'info', `run ${m.run_id} ended after ${m.total_stf_files} STFs; draining the slice queue`, {
          cause: event,
          purpose: 'ended',
          now: ctx.now,
          ...idsOf(ids),
        }),
        ...finishIfDone(run, event, ctx),
      );
    }
    return out;
  }

  function sampleRegistered(
    event: StoredEvent,
    parsed: Extract<ParsedEvent, { kind: 'message' }>,
    ctx: HandleContext,
  ): Output[] {
    const m = parsed.message;
    if (m.msg_type !== 'tf_file_registered') return [];
    const run = runs.get(m.run_id);
    const fp = fpConfig(m.execution_id);
    const specs = sliceSample(m, fp.slices_per_sample);
    if (!run) return [];
    const { run: runEvent } = runStateStep(parsed, undefined, {
      max_slice_retries: fp.max_slice_retries,
    });
    if (!runEvent || stepRun(run, runEvent).refused) return [];
    const stem = fileStem(m.tf_filename);
    let sample = samples.get(stem);
    if (!sample) {
      sample = {
        run_id: run.run_id,
        // the run's copy: one string per run, not one per sample
        execution_id: m.execution_id === run.execution_id ? run.execution_id : m.execution_id,
        stf_filename: m.stf_filename,
        tf_filename: m.tf_filename,
        tf_first: m.tf_first,
        tf_count: m.tf_count,
        untaken: new Uint8Array(specs.length).fill(DECIDED),
        left: specs.length,
      };
      samples.set(stem, sample);
      run.pending += specs.length;
    }
    // Folding history (a restart, time travel) needs the state, not the messages, which are already stored.
    if (ctx.replaying) return [];
    const out: Output[] = [];
    for (const spec of specs) out.push(sliceMessage(recordOf(sample, spec), 1, event, ctx, 'slice', spec.slice_id, 1));
    return out;
  }

  /** A slice's record as its first `slice` message describes it (its machine from that message on). */
  function recordOf(sample: SampleRecord, s: SliceSpec, snapshot?: FastSnapshot<SliceContext>): SliceRecord {
    const fp = fpConfig(sample.execution_id);
    return {
      run_id: sample.run_id,
      snapshot,
      max_retries: fp.max_slice_retries,
      content: {
        run_id: sample.run_id,
        execution_id: sample.execution_id,
        req_id: '',
        filename: sample.stf_filename,
        tf_filename: s.tf_filename,
        fastmon_file: sample.tf_filename,
        slice_id: s.slice_id,
        start: s.start,
        end: s.end,
        tf_count: s.tf_count,
        state: 'queued',
        substate: 'new',
        attempt: 1,
        slice_processing_time: fp.slice_processing_time,
        file_type: 'fake',
      },
    };
  }

  /**
   * Folds an event about a slice. A slice with a record of its own steps it; an untaken one is read from its
   * sample: its first `slice` message counts it as created (and leaves it untaken), the first event of a worker
   * gives it a record, held until the slice is final.
   */
  function onSliceEvent(tfFilename: string, event: StoredEvent, parsed: ParsedEvent, ctx: HandleContext): Output[] {
    const known = slices.get(tfFilename);
    if (known) return stepSlice(event, parsed, known, ctx);
    const name = SLICE_NAME.exec(tfFilename);
    if (!name) return [];
    const stem = name[1]!;
    const sample = samples.get(stem);
    const id = Number(name[2]);
    const mark = sample?.untaken[id];
    if (!sample || !mark) return [];
    const spec = sliceSample(sample, fpConfig(sample.execution_id).slices_per_sample)[id];
    if (spec?.tf_filename !== tfFilename) return [];
    if (mark === DECIDED) {
      const record = recordOf(sample, spec);
      const out = stepSlice(event, parsed, record, ctx);
      if (record.snapshot) sample.untaken[id] = QUEUED;
      return out;
    }
    // QUEUED: the slice machine's state after a first `slice` message, whatever the slice
    const initial = sliceMachine.initial({ max_retries: fpConfig(sample.execution_id).max_slice_retries });
    const record = recordOf(sample, spec, initial);
    slices.set(tfFilename, record);
    const out = stepSlice(event, parsed, record, ctx);
    if (record.snapshot === initial) {
      // not a step of this slice (refused or ignored): it stays untaken
      slices.delete(tfFilename);
      return out;
    }
    sample.untaken[id] = 0;
    if (--sample.left === 0) samples.delete(stem);
    return out;
  }

  /**
   * Folds an event about a slice by the RunState rule: its first `slice` message creates it, a worker's start,
   * a result or an expired lease step it. A failed attempt is retried (a new `slice`) or fails it for good.
   */
  function stepSlice(event: StoredEvent, parsed: ParsedEvent, record: SliceRecord, ctx: HandleContext): Output[] {
    const run = runs.get(record.run_id);
    if (!run) return [];
    const step = runStateStep(parsed, record.snapshot, { max_slice_retries: record.max_retries }, rules);
    if (!step.slice || step.slice.refused) return [];
    const { after, effects } = step.slice;
    const created = record.snapshot === undefined;
    record.snapshot = after;
    if (step.run) stepRun(run, step.run);
    if (created) {
      run.pending--;
      return [];
    }
    const status = sliceMachine.keyOf(after.value);
    if (status === 'processing') {
      record.deadline = after.context.lease_deadline ? Date.parse(after.context.lease_deadline) : undefined;
      record.expiring = undefined;
      processing.add(record);
      return [];
    }
    const out: Output[] = [];
    if (status !== 'completed' && !ctx.replaying) {
      // a failed attempt: the state is all a fold needs; live, a retry goes out or the failure is told
      if (effects.some((e) => e.type === 'requeueSlice')) {
        out.push(
          sliceMessage(
            record,
            after.context.attempt,
            event,
            ctx,
            'retry',
            record.content.tf_filename,
            after.context.attempt,
          ),
        );
      } else {
        out.push(
          logLine(
            agent,
            'warning',
            `slice ${record.content.tf_filename} failed for good after ${after.context.attempt} attempts (${after.context.last_error ?? 'failed'})`,
            {
              cause: event,
              purpose: 'failed',
              now: ctx.now,
              executionId: record.content.execution_id,
              runId: record.run_id,
            },
          ),
        );
      }
    }
    processing.delete(record);
    record.deadline = undefined;
    record.expiring = undefined;
    // A final slice takes no more events (the machine would refuse them), so it need not stay in memory: a
    // 1,000-STF run holds only the slices still in flight, not all 105,000.
    if (status === 'completed' || status === 'failed') slices.delete(record.content.tf_filename);
    out.push(...finishIfDone(run, event, ctx));
    return out;
  }

  const agent: FastProcessingAgent = {
    ...identity,
    streamPrefixes: [
      STREAM_PREFIXES.execution,
      STREAM_PREFIXES.run,
      STREAM_PREFIXES.fastmon,
      STREAM_PREFIXES.results,
      LEGACY_WORKER_PREFIX, // the workers' reports in logs written before results-<run>
      STREAM_PREFIXES.fastproc,
      STREAM_PREFIXES.slices, // its own slice messages: a slice counts as created when the log holds it
    ],
    handles: RUN_STATE_EVENT_TYPES,
    stateful: true,

    handle(event, parsed, ctx) {
      if (parsed.kind === 'domain') {
        switch (parsed.type) {
          case 'WorkflowExecutionStarted':
            parameters.record(event);
            // Our DAQ's (its id is derived from the execution id; a recorded testbed run's is not).
            if (event.id === deriveId(parsed.data.execution_id, 'execution'))
              ownExecutions.add(parsed.data.execution_id);
            return [];
          case 'SliceProcessingStarted':
          case 'SliceLeaseExpired': {
            return onSliceEvent(parsed.data.tf_filename, event, parsed, ctx);
          }
          default:
            return [];
        }
      }
      const m = parsed.message;
      switch (m.msg_type) {
        case 'tf_file_registered':
          return sampleRegistered(event, parsed, ctx);
        case 'slice':
        case 'slice_result': {
          return onSliceEvent(m.content.tf_filename, event, parsed, ctx);
        }
        case 'end_run':
          // The workers' end_run is ours; only the DAQ's drives the run.
          return 'content' in m ? [] : lifecycle(event, parsed, ctx);
        default:
          return lifecycle(event, parsed, ctx);
      }
    },

    nextDeadline() {
      let min: number | undefined;
      for (const r of processing) {
        if (r.deadline !== undefined && r.expiring === undefined && (min === undefined || r.deadline < min))
          min = r.deadline;
      }
      return min;
    },

    onDeadline(nowMs, ctx) {
      const out: Output[] = [];
      for (const r of processing) {
        if (r.deadline === undefined || r.deadline > nowMs || r.expiring !== undefined || !r.snapshot) continue;
        const c = r.snapshot.context;
        r.expiring = c.attempt;
        const cause = { id: deriveId(r.content.tf_filename, r.content.execution_id, 'lease', c.attempt) };
        out.push({
          stream: streams.fastproc(r.run_id),
          event: domainEvent(
            'SliceLeaseExpired',
            {
              run_id: r.run_id,
              execution_id: r.content.execution_id,
              namespace: identity.namespace,
              tf_filename: r.content.tf_filename,
              attempt: c.attempt,
              worker: c.worker ?? 'unknown',
              expired_at: ctx.now,
            },
            { id: cause.id, namespace: identity.namespace, executionId: r.content.execution_id, runNumber: r.run_id },
          ),
        });
      }
      return out;
    },

    runState(runId) {
      return runs.get(runId)?.snapshot.context;
    },

    isFinished(runId) {
      return runs.get(runId)?.finished === true;
    },

    held() {
      return { runs: runs.size, samples: samples.size, slices: slices.size };
    },
  };
  return agent;
}
