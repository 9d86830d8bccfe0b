/**
 * The determinism check: each agent (data, FastMon, fast processing) gets the run's recorded inputs again, in log
 * order, with today's code and the run's recorded configuration (its WorkflowExecutionStarted, which the agents
 * read as they do live), and what it decides now is compared with what it recorded.
 *
 * Outputs are matched by id: output ids are derived from the input's id, so a recomputed output with no recorded
 * twin, or a recorded output of that agent caused by the input that is not recomputed, is a divergence, as is a
 * twin whose stream, type or data (timestamps aside) differ. The log is read once; recorded outputs always come
 * after their input, so only outputs awaiting their twin are held in memory.
 *
 * Not compared: heartbeats (not decisions), and the lease expiries the fast processing agent decides on its
 * deadline timer (they depend on when the timer fired; they are fed back as inputs as recorded).
 */
import type { EventStore, StoredEvent } from '../eventStore/eventStore.js';
import { dataAgent } from '../agents/dataAgent.js';
import { fastMonAgent } from '../agents/fastMonAgent.js';
import { fastProcessingAgent } from '../agents/fastProcessingAgent.js';
import { type Agent, type AgentIdentity, decide, type Output } from '../agents/runtime.js';
import { agentNames } from '../agents/workflow.js';
import { compileRecorded, machineHash } from '../machines/index.js';
import { clockTimeOf, readRunEvents, type RunInfo, TIME_KEYS } from './runEvents.js';

export type CheckedAgent = 'data' | 'fastmon' | 'fast_processing';

export interface CheckOptions {
  /** Replace an agent's factory (tests change a rule this way). */
  factories?: Partial<Record<CheckedAgent, (identity: AgentIdentity) => Agent>>;
  /** Fold with the machine definitions the run recorded instead of today's. */
  recordedMachines?: boolean;
}

export interface Divergence {
  agent: string;
  input: { id: string; type: string; stream: string; position: bigint };
  kind: 'missing' | 'unexpected' | 'different';
  output_id: string;
  recorded: { stream: string; type: string; data: unknown } | null;
  recomputed: { stream: string; type: string; data: unknown } | null;
}

export interface CheckResult {
  run_number: number;
  execution_id: string;
  ok: boolean;
  inputs: number;
  outputs_compared: number;
  agents: Record<string, { inputs: number; outputs: number }>;
  divergence: Divergence | null;
  /** The execution never finished (a crash, or still running): inputs its agents had not acted on are not divergences. */
  unfinished: boolean;
  /** Unfinished runs: per agent, the inputs after the last one it recorded outputs for, whose outputs are missing. */
  unprocessed: { agent: string; inputs: number; first: Divergence['input'] | null }[];
  machines: { recorded_hash: string | null; current_hash: string; same: boolean | null };
}

const TIME_FIELDS: ReadonlySet<string> = new Set(TIME_KEYS);

/** Data without the clock's stamps, keys sorted, as canonical JSON. */
export function canonicalData(value: unknown): string {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) if (!TIME_FIELDS.has(k)) out[k] = walk((v as Record<string, unknown>)[k]);
      return out;
    }
    return v;
  };
  return JSON.stringify(walk(value));
}

interface Pending {
  agent: string;
  input: StoredEvent;
  output: Output;
}

interface Checked {
  kind: CheckedAgent;
  agent: Agent;
  prefixes: readonly string[];
  /** Recorded event types this agent produces besides those naming it as sender/instance/agent. */
  produces: ReadonlySet<string>;
  inputs: number;
  outputs: number;
}

/** The agent that recorded an event, by the name it carries. */
/**
 * What identifies an output across id layouts: its id past the version digit. A derived id is sha1 of its input
 * and purpose; logs written before ids led with the input's revision (`deriveId`) hold the version-5 form of the
 * same hash, which differs only in the first 48 bits and the version. So a run recorded then checks as well.
 */
const derivationOf = (id: string): string => id.slice(15);

const producerOf = (e: StoredEvent): string | undefined => {
  const d = e.data as { sender?: unknown; instance_name?: unknown; agent?: unknown } | null;
  const n = d?.sender ?? d?.instance_name ?? d?.agent;
  return typeof n === 'string' ? n : undefined;
};

/** The names the run's agents used: from their recorded outputs, else the `swf run` names for the user. */
export async function recordedNames(store: EventStore, info: RunInfo): Promise<Record<CheckedAgent, string>> {
  const defaults = agentNames(info.executed_by ?? 'swf');
  const names: Partial<Record<CheckedAgent, string>> = {};
  const by: Record<string, CheckedAgent> = {
    stf_ready: 'data',
    tf_file_registered: 'fastmon',
    run_imminent_worker: 'fast_processing',
    slice: 'fast_processing',
  };
  for await (const e of readRunEvents(store, info)) {
    const kind = by[e.type];
    if (kind && names[kind] === undefined) names[kind] = producerOf(e);
    if (names.data && names.fastmon && names.fast_processing) break;
  }
  return {
    data: names.data ?? defaults.data,
    fastmon: names.fastmon ?? defaults.fastmon,
    fast_processing: names.fast_processing ?? defaults.fastProcessing,
  };
}

const view = (stream: string, type: string, data: unknown): { stream: string; type: string; data: unknown } => ({
  stream,
  type,
  data,
});

export async function checkRun(store: EventStore, info: RunInfo, options: CheckOptions = {}): Promise<CheckResult> {
  const names = await recordedNames(store, info);
  const ns = info.namespace;
  const recorded = options.recordedMachines
    ? compileRecorded((info.started?.data as { machine_definitions?: unknown } | undefined)?.machine_definitions)
    : undefined;
  const fastProcessing = (identity: AgentIdentity): Agent =>
    fastProcessingAgent(identity, recorded ? { machines: recorded } : {});
  const make = (kind: CheckedAgent, type: string, produces: string[]): Checked => {
    const factory =
      options.factories?.[kind] ?? { data: dataAgent, fastmon: fastMonAgent, fast_processing: fastProcessing }[kind];
    const agent = factory({ name: names[kind], type, namespace: ns });
    return { kind, agent, prefixes: agent.streamPrefixes, produces: new Set(produces), inputs: 0, outputs: 0 };
  };
  const agents = [
    make('data', 'DATA', ['DatasetOpened', 'DatasetClosed']),
    make('fastmon', 'fastmon', []),
    make('fast_processing', 'Fast_Processing', ['RunFinished']),
  ];

  /** Recomputed outputs not yet matched, by `derivationOf` their id. */
  const pending = new Map<string, Pending>();
  /** Inputs fed, per agent: a recorded output caused by one of them must have been recomputed. */
  const fed = new Map<string, { agents: Checked[]; input: Divergence['input'] }>();
  let divergence: Divergence | null = null;
  let finished = false;
  /** Per agent: the last input whose recorded outputs were matched (an agent acts on its inputs in log order). */
  const frontier = new Map<string, bigint>();
  let compared = 0;
  let inputs = 0;
  let lastTime = 0;
  const diverge = (d: Divergence): void => {
    if (!divergence || d.input.position < divergence.input.position) divergence = d;
  };
  const inputOf = (e: StoredEvent): Divergence['input'] => ({
    id: e.id,
    type: e.type,
    stream: e.streamName,
    position: e.position,
  });

  for await (const e of readRunEvents(store, info, { agents: true })) {
    if (divergence) break;
    // 1. Is it a recorded output? Match it with its recomputed twin.
    const twin = pending.get(derivationOf(e.id));
    if (twin) {
      pending.delete(derivationOf(e.id));
      compared++;
      if ((frontier.get(twin.agent) ?? -1n) < twin.input.position) frontier.set(twin.agent, twin.input.position);
      const o = twin.output;
      if (
        o.stream !== e.streamName ||
        o.event.type !== e.type ||
        canonicalData(o.event.data) !== canonicalData(e.data)
      ) {
        diverge({
          agent: twin.agent,
          input: inputOf(twin.input),
          kind: 'different',
          output_id: e.id,
          recorded: view(e.streamName, e.type, e.data),
          recomputed: view(o.stream, o.event.type, o.event.data),
        });
      }
    } else if (e.type !== 'agent_heartbeat') {
      const causation = (e.metadata as { causationId?: unknown } | null)?.causationId;
      const cause = typeof causation === 'string' && causation !== e.id ? fed.get(causation) : undefined;
      const name = producerOf(e);
      const producer = cause?.agents.find((a) => (name !== undefined ? a.agent.name === name : a.produces.has(e.type)));
      if (cause && producer) {
        diverge({
          agent: producer.agent.name,
          input: cause.input,
          kind: 'missing',
          output_id: e.id,
          recorded: view(e.streamName, e.type, e.data),
          recomputed: null,
        });
      }
    }
    if (e.type === 'WorkflowExecutionFinished' && e.streamName.startsWith('execution-')) finished = true;
    // 2. Feed it to the agents that read its stream.
    const t = clockTimeOf(e);
    if (t !== undefined) lastTime = t;
    const ctx = { now: new Date(lastTime).toISOString(), replaying: false };
    let counted = false;
    for (const a of agents) {
      if (!a.prefixes.some((p) => e.streamName.startsWith(p))) continue;
      const outputs = decide(a.agent, e, ctx).filter((o) => o.event.type !== 'agent_heartbeat');
      if (!a.agent.handles.has(e.type)) continue;
      a.inputs++;
      counted = true;
      const entry = fed.get(e.id);
      if (entry) entry.agents.push(a);
      else fed.set(e.id, { agents: [a], input: inputOf(e) });
      for (const o of outputs) {
        a.outputs++;
        pending.set(derivationOf(o.event.id), { agent: a.agent.name, input: e, output: o });
      }
    }
    if (counted) inputs++;
  }
  // Recomputed outputs that were never recorded. In an unfinished run, those of inputs after the last one an agent
  // recorded outputs for were never acted on (the agent died, or has not got there yet): not a divergence.
  const unprocessed = new Map<string, { agent: string; inputs: Set<string>; first: Divergence['input'] | null }>();
  if (!divergence) {
    for (const p of pending.values()) {
      if (!finished && p.input.position > (frontier.get(p.agent) ?? -1n)) {
        const u = unprocessed.get(p.agent) ?? { agent: p.agent, inputs: new Set<string>(), first: null };
        u.inputs.add(p.input.id);
        if (!u.first || p.input.position < u.first.position) u.first = inputOf(p.input);
        unprocessed.set(p.agent, u);
        continue;
      }
      diverge({
        agent: p.agent,
        input: inputOf(p.input),
        kind: 'unexpected',
        output_id: p.output.event.id,
        recorded: null,
        recomputed: view(p.output.stream, p.output.event.type, p.output.event.data),
      });
    }
  }
  const current = machineHash();
  return {
    run_number: info.run_number,
    execution_id: info.execution_id,
    ok: divergence === null,
    inputs,
    outputs_compared: compared,
    agents: Object.fromEntries(agents.map((a) => [a.agent.name, { inputs: a.inputs, outputs: a.outputs }])),
    divergence,
    unfinished: !finished,
    unprocessed: [...unprocessed.values()].map((u) => ({ agent: u.agent, inputs: u.inputs.size, first: u.first })),
    machines: {
      recorded_hash: info.machine_hash ?? null,
      current_hash: current,
      same: info.machine_hash ? info.machine_hash === current : null,
    },
  };
}

export function formatCheck(r: CheckResult): string {
  const lines: string[] = [];
  if (r.machines.same === false) {
    lines.push(
      `Note: today's machine definitions differ from the ones run ${r.run_number} recorded (recorded ${r.machines.recorded_hash!.slice(0, 12)}…, today ${r.machines.current_hash.slice(0, 12)}…)`,
    );
  }
  const per = Object.entries(r.agents)
    .map(([n, a]) => `${n}: ${a.inputs} inputs, ${a.outputs} outputs`)
    .join('; ');
  if (r.ok && r.unfinished) {
    lines.push(
      `Run ${r.run_number}: UNFINISHED — execution ${r.execution_id} never finished; what was recorded is deterministic: ${r.outputs_compared} recorded outputs recomputed identically from ${r.inputs} inputs (${per})`,
      ...r.unprocessed.map(
        (u) =>
          `  ${u.agent}: ${u.inputs} inputs without outputs yet, from ${u.first!.type} ${u.first!.id} (${u.first!.stream}, position ${u.first!.position})`,
      ),
      `  (swf run --resume ${r.execution_id} carries it on)`,
    );
  } else if (r.ok) {
    lines.push(
      `Run ${r.run_number}: deterministic — ${r.outputs_compared} recorded outputs recomputed identically from ${r.inputs} inputs (${per})`,
    );
  } else {
    const d = r.divergence!;
    const what = {
      missing: 'recorded but not recomputed',
      unexpected: 'recomputed but not recorded',
      different: 'recomputed differently',
    }[d.kind];
    lines.push(
      `Run ${r.run_number}: DIVERGES — agent ${d.agent}, input ${d.input.type} ${d.input.id} (${d.input.stream}, position ${d.input.position}): output ${d.output_id} ${what}`,
      `  recorded:   ${d.recorded ? JSON.stringify(d.recorded) : '(none)'}`,
      `  recomputed: ${d.recomputed ? JSON.stringify(d.recomputed) : '(none)'}`,
    );
  }
  return lines.join('\n') + '\n';
}
