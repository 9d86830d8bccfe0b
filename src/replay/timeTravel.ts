/**
 * Time travel: a run's views as they stood at a log position or a workflow-clock time, folded from the log by the
 * RunState rule (`runStateStep`), the one the fast processing agent and the workflow projection fold with.
 */
import { ValidationError } from '../errors.js';
import type { EventStore, StoredEvent } from '../eventStore/eventStore.js';
import { parseEvent, type ParsedEvent } from '../messages/parse.js';
import { fastParse } from '../projections/projection.js';
import {
  type FastSnapshot,
  initialRunContext,
  machineHash,
  type RunContext,
  type RunEvent,
  type RunState,
  runStateOf,
  RunStateFold,
  RUN_STATE_EVENT_TYPES,
} from '../machines/index.js';
import { clockTimeOf, locateRun, readRunEvents, type RunInfo } from './runEvents.js';

/** Where to stop: a log position (inclusive) or a workflow-clock time (events stamped at or before it). */
export type ReplayPoint = { position: bigint } | { time: number } | undefined;

/** `--at` as given: digits are a log position, anything else an ISO-8601 time. */
export function parseReplayPoint(at: string | undefined): ReplayPoint {
  if (at === undefined) return undefined;
  if (/^\d+$/.test(at)) return { position: BigInt(at) };
  const t = /^\d{4}-\d{2}-\d{2}(T|$)/.test(at) ? Date.parse(at) : Number.NaN;
  if (!Number.isFinite(t))
    throw new ValidationError(`--at must be a log position (digits) or an ISO-8601 time, got '${at}'`, { field: 'at' });
  return { time: t };
}

/** The RunState fields of DESIGN.md semantics 7, of one run. */
export type RunStateView = { run_id: string; execution_id: string | null } & RunState;

export interface ReplayView {
  run_number: number;
  execution_id: string;
  namespace: string;
  /** The log position the views stand at: the last event of the run folded (0 when none). */
  position: bigint;
  /** The workflow-clock time of the last folded event that carries one. */
  time: string | null;
  /** Events of the run folded. */
  events: number;
  run_state: RunStateView;
  slices: { queued: number; processing: number; completed: number; failed: number };
  stf_files: number;
  tf_samples: number;
  last_message: { position: bigint; stream: string; type: string; time: string | null; sender: string | null } | null;
  machines: { recorded_hash: string | null; current_hash: string; same: boolean | null };
}

function runStateView(runId: string, c: RunContext): RunStateView {
  return { run_id: runId, execution_id: c.execution_id, ...runStateOf(c) };
}

const senderOf = (e: StoredEvent): string | null => {
  const d = e.data as { sender?: unknown; worker?: unknown; agent?: unknown } | null;
  const s = d?.sender ?? d?.worker ?? d?.agent;
  return typeof s === 'string' ? s : null;
};

export interface PlaybackOptions {
  /** Told of every run machine transition taken (refused events aside), e.g. for the Stately inspector. */
  onRunTransition?: (runId: string, event: RunEvent, snapshot: FastSnapshot<RunContext>) => void;
  /**
   * Plays the events back in real time divided by `speed` (by their workflow-clock stamps), for someone watching
   * (`--inspect`). Undefined: as fast as possible.
   */
  speed?: number;
}

/**
 * The event parsed, if the RunState rule reads its type and it is valid; the monitor's projection parses the same
 * way (`fastParse` first), so the two agree on every event.
 */
function parseKnown(e: StoredEvent, namespace: string): ParsedEvent | undefined {
  if (!RUN_STATE_EVENT_TYPES.has(e.type)) return undefined;
  const ns = (e.data as { namespace?: unknown } | null)?.namespace;
  if (typeof ns === 'string' && ns !== namespace) return undefined;
  try {
    return fastParse(e) ?? parseEvent(e);
  } catch {
    return undefined;
  }
}

/** Folds a run's events up to `point` (the end of the run when undefined). */
export async function replayRun(
  store: EventStore,
  run: string | number,
  point?: ReplayPoint,
  known?: RunInfo,
  playback: PlaybackOptions = {},
): Promise<ReplayView> {
  const info = known ?? (await locateRun(store, run));
  const fold = new RunStateFold(undefined, playback.onRunTransition);
  const speed = playback.speed;
  const until = point && 'position' in point ? point.position : undefined;
  const limit = point && 'time' in point ? point.time : undefined;
  let last: StoredEvent | undefined;
  let lastTime: number | undefined;
  let events = 0;
  // Clock stamps are read only when asked for (--at TIME, playback speed): parsing dates costs more than folding.
  const timed = limit !== undefined || speed !== undefined;
  let t: number | undefined;
  for await (const e of readRunEvents(store, info, until !== undefined ? { until } : {})) {
    t = timed ? clockTimeOf(e) : undefined;
    // The log is in clock order for a run's events; stop at the first one stamped after the time asked for.
    if (limit !== undefined && t !== undefined && t > limit) break;
    if (speed !== undefined && t !== undefined && lastTime !== undefined && t > lastTime)
      await new Promise((r) => setTimeout(r, (t! - lastTime!) / speed));
    const parsed = parseKnown(e, info.namespace);
    if (parsed) fold.apply(parsed);
    last = e;
    if (t !== undefined) lastTime = t;
    events++;
  }
  if (!timed && last) {
    // The time the view stands at: the last folded event's clock stamp (or of one before it without one).
    lastTime = clockTimeOf(last);
  }
  const c = fold.run(info.run_id)?.context ?? initialRunContext;
  const current = machineHash();
  return {
    run_number: info.run_number,
    execution_id: info.execution_id,
    namespace: info.namespace,
    position: last?.position ?? 0n,
    time: lastTime !== undefined ? new Date(lastTime).toISOString() : null,
    events,
    run_state: runStateView(info.run_id, c),
    slices: {
      queued: c.slices_queued,
      processing: c.slices_processing,
      completed: c.slices_completed,
      failed: c.slices_failed,
    },
    stf_files: c.stf_files,
    tf_samples: c.stf_samples_received,
    last_message: last
      ? {
          position: last.position,
          stream: last.streamName,
          type: last.type,
          time: clockTimeOf(last) !== undefined ? new Date(clockTimeOf(last)!).toISOString() : null,
          sender: senderOf(last),
        }
      : null,
    machines: {
      recorded_hash: info.machine_hash ?? null,
      current_hash: current,
      same: info.machine_hash ? info.machine_hash === current : null,
    },
  };
}

/** The views as text for a terminal. */
export function formatReplay(v: ReplayView): string {
  const r = v.run_state;
  const lines = [
    `Run ${v.run_number} (execution ${v.execution_id}, namespace ${v.namespace}) at position ${v.position}${v.time ? `, ${v.time}` : ''} (${v.events} events folded)`,
    `├── Phase: ${r.phase} (state ${r.state}/${r.substate ?? '-'})`,
    `├── STF files: ${v.stf_files}${r.total_stf_files !== null ? ` of ${r.total_stf_files}` : ''} → TF samples: ${v.tf_samples}`,
    `├── Slices: ${r.slices_created} created: ${v.slices.queued} queued, ${v.slices.processing} processing, ${v.slices.completed} completed, ${v.slices.failed} failed (${r.slices_retried} retries)`,
    `├── Workers: ${r.active_worker_count} active of ${r.target_worker_count} requested`,
    `└── Last message: ${v.last_message ? `${v.last_message.type} in ${v.last_message.stream} at position ${v.last_message.position}${v.last_message.sender ? ` from ${v.last_message.sender}` : ''}${v.last_message.time ? ` (${v.last_message.time})` : ''}` : 'none'}`,
  ];
  if (v.machines.same === false) {
    lines.push(
      `Note: the machine definitions differ from the ones this run recorded (recorded ${v.machines.recorded_hash!.slice(0, 12)}…, today ${v.machines.current_hash.slice(0, 12)}…)`,
    );
  }
  return lines.join('\n') + '\n';
}
