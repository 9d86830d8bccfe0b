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
  runEventOf,
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
}

interface SliceRecord {
  run_id: string;
  snapshot: FastSnapshot<SliceContext>;
  /** The first `slice` message's content; retries copy it with the next attempt. */
  content: Slice['content'];
  /** Lease deadline (clock ms) while processing. */
  deadline?: number;
  /** Set once a SliceLeaseExpired for the current attempt was written, until it comes back through the log. */
  expiring?: number;
}

/**
 * A TF sample with slices no worker has taken yet. A slice still queued at its first attempt is all in its
 * sample (and its `slice` message, already stored), so it gets a record of its own only when it is taken: memory
 * follows the slices in flight at a worker or waiting for a retry, not the queue, which in virtual time holds
 * nearly every slice of the run when data taking ends (1,050,000 at 10,000 STFs; docs/run.md "Memory").
 */
interface SampleRecord {
  run: RunRecord;
  execution_id: string;
  stf_filename: string;
  tf_filename: string;
  tf_first: number;
  tf_count: number;
  /** 1 for each slice_id not taken yet. */
  untaken: Uint8Array;
  left: number;
}

/** `<sample stem>_slice_<NNN>.tf` (sliceFilename): the sample's stem and the slice_id. */
const SLICE_NAME = /^(.*)_slice_([0-9]{3,})\.tf$/;

export interface FastProcessingAgent extends Agent {
  /** RunState of a run (for the composition root's progress display and summary). */
  runState(runId: string): RunContext | undefined;
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
  /** Slices taken at least once and not final, by slice name. */
  const slices = new Map<string, SliceRecord>();
  /** Samples with untaken slices, by the sample's file stem. */
  const samples = new Map<string, SampleRecord>();
  const processing = new Set<SliceRecord>();
  const runMachine = options.machines?.run ?? fastRun;
  const sliceMachine = options.machines?.slice ?? fastSlice;

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

  /** Records the run's end once every slice is final. */
  function finishIfDone(run: RunRecord, cause: StoredEvent, ctx: HandleContext): Output[] {
    if (run.finished || !isFinished(run.snapshot)) return [];
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
    const runEvent = runEventOf(
      m,
      m.msg_type === 'run_imminent' ? { target_worker_count: fpConfig(m.execution_id).target_worker_count } : {},
    );
    if (!runEvent) return [];
    let run = runs.get(m.run_id);
    if (!run) {
      run = { execution_id: m.execution_id, run_id: m.run_id, snapshot: runMachine.initial(), finished: false };
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
      const { msg_type: _t, sender: _s, ...body } = m as unknown as Record<string, unknown>;
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
    m: Extract<ParsedEvent, { kind: 'message' }>['message'],
    ctx: HandleContext,
  ): Output[] {
    if (m.msg_type !== 'tf_file_registered') return [];
    const run = runs.get(m.run_id);
    const fp = fpConfig(m.execution_id);
    const specs = sliceSample(m, fp.slices_per_sample);
    if (!run) return [];
    const { refused } = stepRun(run, { type: 'SAMPLE_REGISTERED', slices: specs.length });
    if (refused) return [];
    const untaken = new Uint8Array(specs.length).fill(1);
    const sample: SampleRecord = {
      run,
      // the run's copy: one string per run, not one per sample
      execution_id: m.execution_id === run.execution_id ? run.execution_id : m.execution_id,
      stf_filename: m.stf_filename,
      tf_filename: m.tf_filename,
      tf_first: m.tf_first,
      tf_count: m.tf_count,
      untaken,
      left: specs.length,
    };
    samples.set(fileStem(m.tf_filename), sample);
    // Folding history (a restart, time travel) needs the state, not the messages, which are already stored.
    if (ctx.replaying) return [];
    return specs.map((s) => sliceMessage(recordOf(sample, s), 1, event, ctx, 'slice', s.slice_id, 1));
  }

  /** A slice's record as its first `slice` message describes it. */
  function recordOf(sample: SampleRecord, s: SliceSpec): SliceRecord {
    const fp = fpConfig(sample.execution_id);
    return {
      run_id: sample.run.run_id,
      snapshot: sliceMachine.initial({ max_retries: fp.max_slice_retries }),
      content: {
        run_id: sample.run.run_id,
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
   * The record of a slice an event names: the one it has if it was taken before, else a new one from its sample
   * if it is still untaken (undefined: not a slice of ours, or final already).
   */
  function sliceRecord(tfFilename: string): SliceRecord | undefined {
    const known = slices.get(tfFilename);
    if (known) return known;
    const name = SLICE_NAME.exec(tfFilename);
    if (!name) return undefined;
    const sample = samples.get(name[1]!);
    const id = Number(name[2]);
    if (!sample || sample.untaken[id] !== 1) return undefined;
    const spec = sliceSample(sample, fpConfig(sample.execution_id).slices_per_sample)[id];
    if (spec?.tf_filename !== tfFilename) return undefined;
    sample.untaken[id] = 0;
    if (--sample.left === 0) samples.delete(name[1]!);
    const record = recordOf(sample, spec);
    slices.set(tfFilename, record);
    return record;
  }

  /** Steps a slice; on a failed attempt, retries it (a new `slice`) or fails it for good. */
  function stepSlice(event: StoredEvent, record: SliceRecord, sliceEvent: SliceEvent, ctx: HandleContext): Output[] {
    const run = runs.get(record.run_id);
    if (!run) return [];
    const before = record.snapshot;
    const [after, effects] = sliceMachine.transition(before, sliceEvent);
    if (refusalOf(before, after)) return [];
    record.snapshot = after;
    const out: Output[] = [];
    switch (sliceEvent.type) {
      case 'START':
        stepRun(run, { type: 'SLICE_STARTED' });
        record.deadline = sliceEvent.lease_deadline ? Date.parse(sliceEvent.lease_deadline) : undefined;
        record.expiring = undefined;
        processing.add(record);
        return out;
      case 'SUCCEED':
        stepRun(run, { type: 'SLICE_SUCCEEDED' });
        break;
      case 'FAIL':
      case 'LEASE_EXPIRED': {
        const retry = effects.some((e) => e.type === 'requeueSlice');
        stepRun(run, { type: 'SLICE_FAILED', final: !retry });
        if (ctx.replaying) {
          // the state is all a fold needs
        } else if (retry) {
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
              `slice ${record.content.tf_filename} failed for good after ${sliceEvent.attempt} attempts (${after.context.last_error ?? 'failed'})`,
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
        break;
      }
    }
    processing.delete(record);
    record.deadline = undefined;
    record.expiring = undefined;
    // A final slice takes no more events (the machine would refuse them), so it need not stay in memory.
    if (sliceMachine.keyOf(after.value) === 'completed' || sliceMachine.keyOf(after.value) === 'failed') {
      slices.delete(record.content.tf_filename);
    }
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
    ],
    handles: new Set([
      'WorkflowExecutionStarted',
      'run_imminent',
      'start_run',
      'stf_gen',
      'pause_run',
      'resume_run',
      'end_run',
      'tf_file_registered',
      'SliceProcessingStarted',
      'slice_result',
      'SliceLeaseExpired',
    ]),
    stateful: true,

    handle(event, parsed, ctx) {
      if (parsed.kind === 'domain') {
        switch (parsed.type) {
          case 'WorkflowExecutionStarted':
            parameters.record(event);
            return [];
          case 'SliceProcessingStarted': {
            const record = sliceRecord(parsed.data.tf_filename);
            if (!record) return [];
            return stepSlice(
              event,
              record,
              {
                type: 'START',
                attempt: parsed.data.attempt,
                worker: parsed.data.worker,
                lease_deadline: parsed.data.lease_deadline,
              },
              ctx,
            );
          }
          case 'SliceLeaseExpired': {
            const record = sliceRecord(parsed.data.tf_filename);
            if (!record) return [];
            return stepSlice(event, record, { type: 'LEASE_EXPIRED', attempt: parsed.data.attempt }, ctx);
          }
          default:
            return [];
        }
      }
      const m = parsed.message;
      switch (m.msg_type) {
        case 'tf_file_registered':
          return sampleRegistered(event, m, ctx);
        case 'slice_result': {
          const c = m.content;
          const record = sliceRecord(c.tf_filename);
          if (!record) return [];
          return stepSlice(
            event,
            record,
            c.state === 'done'
              ? { type: 'SUCCEED', attempt: c.attempt }
              : { type: 'FAIL', attempt: c.attempt, reason: c.result?.error ?? 'payload failed' },
            ctx,
          );
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
        if (r.deadline === undefined || r.deadline > nowMs || r.expiring !== undefined) continue;
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

    held() {
      return { runs: runs.size, samples: samples.size, slices: slices.size };
    },
  };
  return agent;
}
