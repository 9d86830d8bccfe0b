/**
 * `swf stop` (and the REST and MCP writes to come): ask an execution to stop. The DAQ simulator running it sees
 * StopRequested, sends end_run and records the execution as terminated. When nothing of the execution is running
 * any more (no event of it appended within `goneAfterMs` of the wall clock, e.g. its `swf run` was killed), no
 * one would read the request: the service ends the execution itself, terminated, with the reason.
 */
import { IllegalStateError, NotFoundError } from '../errors.js';
import type { EventStore, NewEvent, StoredEvent } from '../eventStore/eventStore.js';
import { deriveId, domainEvent, streams } from '../messages/index.js';
import { type Decider, handle } from './handle.js';

export interface ExecutionState {
  started: boolean;
  namespace: string | undefined;
  /** The status it ended with, once it has. */
  ended: string | undefined;
}

export interface StopCommand {
  execution_id: string;
  /** Wall-clock time of the request (ISO UTC). */
  now: string;
  /** Whether the execution's agents are gone: nothing of it was appended for `seconds` before `now`. */
  agentsGone: false | { seconds: number };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

export const executionDecider: Decider<ExecutionState, StopCommand> = {
  initial: { started: false, namespace: undefined, ended: undefined },
  evolve: (state, e) => {
    const d = isRecord(e.data) ? e.data : {};
    if (e.type === 'WorkflowExecutionStarted') {
      return { ...state, started: true, namespace: typeof d.namespace === 'string' ? d.namespace : undefined };
    }
    if (e.type === 'WorkflowExecutionFinished') {
      return { ...state, ended: typeof d.status === 'string' ? d.status : 'ended' };
    }
    return state;
  },
  decide: (command, state) => {
    const id = command.execution_id;
    if (!state.started) throw new NotFoundError(`unknown execution '${id}'`);
    if (state.ended !== undefined) {
      throw new IllegalStateError(`execution '${id}' already ended (${state.ended}); nothing to stop`);
    }
    const namespace = state.namespace ?? 'default';
    const events: NewEvent[] = [
      domainEvent(
        'StopRequested',
        { execution_id: id, requested_at: command.now },
        { id: deriveId(id, 'stop', command.now), namespace, executionId: id },
      ),
    ];
    if (command.agentsGone !== false) {
      events.push(
        domainEvent(
          'WorkflowExecutionFinished',
          {
            execution_id: id,
            status: 'terminated',
            end_time: command.now,
            reason: `stopped by swf stop: nothing of the execution was appended for ${command.agentsGone.seconds} s, so no agent is running it`,
          },
          { id: deriveId(id, 'stop', command.now, 'terminated'), namespace, executionId: id },
        ),
      );
    }
    return events;
  },
};

/** The execution an event belongs to (body, slice content, or metadata). */
function executionOf(e: StoredEvent): string | undefined {
  const d = isRecord(e.data) ? e.data : {};
  const c = isRecord(d.content) ? d.content : {};
  const m = isRecord(e.metadata) ? e.metadata : {};
  const id = d.execution_id ?? c.execution_id ?? m.executionId;
  return typeof id === 'string' ? id : undefined;
}

/**
 * Whether anything of the execution but a stop request was appended within `windowMs` before `nowMs` (by the
 * store's clock: virtual runs stamp their events with times of their own). Reads the log backwards, only that far.
 */
export async function executionActive(
  store: EventStore,
  executionId: string,
  nowMs: number,
  windowMs: number,
): Promise<boolean> {
  const since = nowMs - windowMs;
  for await (const e of store.readAll({ direction: 'backwards' })) {
    if (e.recordedAt.getTime() < since) return false;
    if (e.type !== 'StopRequested' && executionOf(e) === executionId) return true;
  }
  return false;
}

export interface StopOptions {
  /** Wall-clock now, ms (tests). */
  nowMs?: number;
  /** How long without an event of the execution means its agents are gone. Default 180 s (monitor staleness). */
  goneAfterMs?: number;
}

export const DEFAULT_GONE_AFTER_MS = 180_000;

export interface StopResult {
  execution_id: string;
  /** `requested`: StopRequested for the running agents; `terminated`: ended here, its agents being gone. */
  outcome: 'requested' | 'terminated';
}

export async function stopExecution(
  store: EventStore,
  executionId: string,
  options: StopOptions = {},
): Promise<StopResult> {
  const nowMs = options.nowMs ?? Date.now();
  const goneAfterMs = options.goneAfterMs ?? DEFAULT_GONE_AFTER_MS;
  const active = await executionActive(store, executionId, nowMs, goneAfterMs);
  const command: StopCommand = {
    execution_id: executionId,
    now: new Date(nowMs).toISOString(),
    agentsGone: active ? false : { seconds: Math.round(goneAfterMs / 1000) },
  };
  const r = await handle(store, streams.execution(executionId), executionDecider, command);
  return { execution_id: executionId, outcome: r.events.length > 1 ? 'terminated' : 'requested' };
}
