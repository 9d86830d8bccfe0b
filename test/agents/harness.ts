/**
 * Given / when / then for agents, without a store: given stored events (decided, outputs discarded) → when one
 * event → then the outputs the agent would append. Events are built with the message helpers and given log
 * positions in order, as the store would. `feed()` plays an agent's own outputs back to it, as the log does.
 */
import { pino } from 'pino';
import { expect } from 'vitest';
import { loadConfig, type LoadedConfig } from '../../src/config/index.js';
import type { StoredEvent } from '../../src/eventStore/eventStore.js';
import { machineDefinitions, machineHash } from '../../src/machines/index.js';
import {
  deriveId,
  domainEvent,
  type EnvelopedEvent,
  messageEvent,
  type Message,
  streamForMessage,
  streams,
} from '../../src/messages/index.js';
import { type Agent, decide, type Output } from '../../src/agents/runtime.js';

export const NAMESPACE = 'test-ns';
export const EXECUTION = 'fast_processing-test-0001';
export const RUN = '100010';
export const T0 = Date.parse('2026-01-15T11:00:00.000Z');
export const silent = pino({ level: 'silent' });

export const identity = (name: string, type = name): { name: string; type: string; namespace: string } => ({
  name,
  type,
  namespace: NAMESPACE,
});

/** The default configuration with `--set` overrides, read from the repository's workflows/. */
export function config(...set: string[]): LoadedConfig {
  return loadConfig({ set, env: {} });
}

/** Builds stored events at increasing positions. */
export class Log {
  private position = 0n;
  private readonly revisions = new Map<string, bigint>();
  readonly events: StoredEvent[] = [];

  store(stream: string, e: { id: string; type: string; data: unknown; metadata?: unknown }): StoredEvent {
    const revision = (this.revisions.get(stream) ?? -1n) + 1n;
    this.revisions.set(stream, revision);
    this.position += 1n;
    const stored: StoredEvent = {
      id: e.id,
      type: e.type,
      data: e.data,
      metadata: e.metadata ?? { namespace: NAMESPACE },
      streamName: stream,
      revision,
      position: this.position,
      recordedAt: new Date(T0),
    };
    this.events.push(stored);
    return stored;
  }

  output(o: Output): StoredEvent {
    return this.store(o.stream, o.event);
  }
}

let seq = 0;
const at = (offsetSeconds: number): string => new Date(T0 + offsetSeconds * 1000).toISOString();

/** A message of ours, enveloped (validated) with a fresh derived id. */
export function message(body: Record<string, unknown>): EnvelopedEvent {
  return messageEvent(body as unknown as Message, { id: deriveId('test', 'message', seq++) });
}

const daqFields = (tick: number) => ({
  namespace: NAMESPACE,
  sender: 'daq_simulator-agent-test',
  execution_id: EXECUTION,
  run_id: RUN,
  created_at: at(tick),
  timestamp: at(tick),
  simulation_tick: tick,
});

/** The DAQ's lifecycle messages, as the simulator sends them. */
export const daq = {
  runImminent: () => message({ msg_type: 'run_imminent', ...daqFields(5), state: 'beam', substate: 'not_ready' }),
  startRun: () => message({ msg_type: 'start_run', ...daqFields(13), state: 'run', substate: 'physics' }),
  stfGen: (sequence: number) =>
    message({
      msg_type: 'stf_gen',
      ...daqFields(14 + sequence),
      state: 'run',
      substate: 'physics',
      filename: `swf.${RUN}.${String(sequence).padStart(6, '0')}.stf`,
      sequence,
    }),
  pauseRun: () => message({ msg_type: 'pause_run', ...daqFields(40), state: 'run', substate: 'standby' }),
  resumeRun: () => message({ msg_type: 'resume_run', ...daqFields(42), state: 'run', substate: 'physics' }),
  endRun: (total: number) => message({ msg_type: 'end_run', ...daqFields(60), total_stf_files: total }),
};

/** The execution's first event: the agents read their parameters from it. */
export function executionStarted(loaded: LoadedConfig): EnvelopedEvent {
  const definitions = machineDefinitions();
  return domainEvent(
    'WorkflowExecutionStarted',
    {
      execution_id: EXECUTION,
      workflow_name: 'fast_processing',
      namespace: NAMESPACE,
      executed_by: 'test',
      parameter_values: loaded.parameterValues,
      machine_hash: machineHash(definitions),
      machine_definitions: definitions,
      start_time: at(0),
      run_number: Number(RUN),
    },
    { id: deriveId(EXECUTION, 'execution'), namespace: NAMESPACE },
  );
}

/** The stream an enveloped message goes to. */
export function streamOf(e: EnvelopedEvent): string {
  const d = e.data as { worker?: string; run_id?: string };
  switch (e.type) {
    case 'WorkflowExecutionStarted':
      return streams.execution(EXECUTION);
    case 'SliceProcessingStarted':
      return streams.results(d.run_id!);
    case 'SliceLeaseExpired':
      return streams.fastproc(d.run_id!);
    default:
      return streamForMessage(e.data as Message);
  }
}

export const ctx = (offsetSeconds = 0): { now: string; replaying: boolean } => ({
  now: at(offsetSeconds),
  replaying: false,
});

/**
 * An agent under test: `given` feeds events (as stored), `when` decides one and returns what it would append.
 * Outputs of `given` and `when` are not fed back unless `feed` is called.
 */
export class AgentUnderTest<A extends Agent = Agent> {
  readonly log = new Log();
  constructor(readonly agent: A) {}

  given(...events: (EnvelopedEvent | StoredEvent)[]): this {
    for (const e of events) this.decide(e);
    return this;
  }

  /** Stores the event (unless already stored) and decides it. */
  decide(e: EnvelopedEvent | StoredEvent, context = ctx()): Output[] {
    const stored = 'position' in e ? e : this.log.store(streamOf(e), e);
    return decide(this.agent, stored, context);
  }

  when(e: EnvelopedEvent | StoredEvent, context = ctx()): Then {
    return new Then(this.decide(e, context));
  }

  /** Plays outputs back to the agent as the log would (stored, then decided), returning what they caused. */
  feed(outputs: readonly Output[], context = ctx()): Output[] {
    return outputs.flatMap((o) => decide(this.agent, this.log.output(o), context));
  }
}

export class Then {
  constructor(readonly outputs: Output[]) {}

  get types(): string[] {
    return this.outputs.map((o) => o.event.type);
  }

  /** The outputs of one type, their data. */
  data<T = Record<string, unknown>>(type: string): T[] {
    return this.outputs.filter((o) => o.event.type === type).map((o) => o.event.data as T);
  }

  appends(...types: string[]): this {
    expect(this.types).toEqual(types);
    return this;
  }

  nothing(): this {
    expect(this.outputs).toEqual([]);
    return this;
  }
}
