/**
 * The message store (every wire message with a broker destination: its envelope and log position), the agents (last heartbeat) with the log's
 * clock, and the agents' logs.
 */
import {
  executionIdOf,
  int,
  isRecord,
  type Keyed,
  NO_WRITES,
  type Projection,
  runNumberOf,
  str,
} from './projection.js';

const json = (v: unknown): string => JSON.stringify(v);

/**
 * Heartbeats and logs are not workflow messages: the testbed sends them over REST, not through the broker, and
 * they have their own tables and endpoints. Everything else our agents send is.
 */
export const isWorkflowMessageType = (type: string): boolean => type !== 'agent_heartbeat' && type !== 'agent_log';

const INSERT_MESSAGE = `INSERT INTO workflow_messages (position, message_id, message_type, sender_agent, namespace,
  execution_id, run_id, queue_name, correlation_id, causation_id, stream, sent_at)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`;

export const messagesProjection: Projection = {
  name: 'messages',
  state: {},
  evolve(e) {
    if (e.parsed?.kind !== 'message' || !isWorkflowMessageType(e.type)) return NO_WRITES;
    const m = e.parsed.message;
    const run = runNumberOf(e);
    return [
      {
        sql: INSERT_MESSAGE,
        params: [
          Number(e.position),
          e.id,
          m.msg_type,
          m.sender,
          m.namespace,
          executionIdOf(e) ?? null,
          run === undefined ? null : String(run),
          str(e.metadata.destination) ?? null,
          str(e.metadata.correlationId) ?? null,
          str(e.metadata.causationId) ?? null,
          e.stream,
          e.time,
        ],
      },
    ];
  },
};

interface AgentEntry {
  agent_type: string;
  description: string | null;
  status: string;
  operational_state: string;
  namespace: string | null;
  last_heartbeat: string;
  /** When the store recorded the last heartbeat (wall clock, ISO): what liveness is judged by. */
  last_seen: string;
  pid: number | null;
  hostname: string | null;
  execution_id: string | null;
  run_id: string | null;
  heartbeat_count: number;
  /** Workflow messages the agent sent (not heartbeats or logs), counted once it has a row (its first heartbeat). */
  messages_sent: number;
  created_at: string;
}

/** The latest workflow-clock time in the log. */
interface LogClock {
  latest: string;
  ms: number;
  /** The last event's own time: the next event's is nearly always the same text, which moves the clock no more. */
  lastOwnTime: string | undefined;
}

interface AgentsState {
  agents: Keyed<string, AgentEntry>;
  clock: Keyed<number, LogClock>;
}

const UPSERT_AGENT = `INSERT INTO systemagents (instance_name, agent_type, description, status, operational_state,
  namespace, last_heartbeat, pid, hostname, execution_id, run_id, heartbeat_count, messages_sent, created_at,
  updated_at, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (instance_name) DO UPDATE SET agent_type = excluded.agent_type, description = excluded.description,
  status = excluded.status, operational_state = excluded.operational_state, namespace = excluded.namespace,
  last_heartbeat = excluded.last_heartbeat, pid = excluded.pid, hostname = excluded.hostname,
  execution_id = excluded.execution_id, run_id = excluded.run_id, heartbeat_count = excluded.heartbeat_count,
  messages_sent = excluded.messages_sent, updated_at = excluded.updated_at, last_seen = excluded.last_seen`;
const SET_CLOCK = `INSERT INTO log_clock (id, latest) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET latest = excluded.latest`;

const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/**
 * Whether an event's own time is known, without parsing it, not to move the log's clock: it is a time of the same
 * UTC day as `latest` (which `toISOString` wrote), in the same 'YYYY-MM-DDTHH:MM:SS.sssZ' form, whose text sorts at
 * or before it. (The date being `latest`'s, it is a real one; an hour at or before `latest`'s is below 24; a minute
 * or second above 59 does not parse, so it would not move the clock either.) Anything else is parsed and compared.
 */
export function notLater(ownTime: string | undefined, latest: string): boolean {
  if (ownTime === undefined || ownTime.length !== 24 || latest.length !== 24) return false;
  for (let i = 0; i < 11; i++) if (ownTime.charCodeAt(i) !== latest.charCodeAt(i)) return false;
  for (let i = 11; i < 24; i++) {
    const ch = ownTime.charCodeAt(i);
    const want = i === 13 || i === 16 ? 58 /* : */ : i === 19 ? 46 /* . */ : i === 23 ? 90 /* Z */ : -1;
    if (want === -1 ? ch < 48 || ch > 57 : ch !== want) return false;
  }
  return ownTime <= latest;
}
/** The one row of `log_clock`. */
const CLOCK = 1;

export const agentsProjection: Projection<AgentsState> = {
  name: 'agents',
  state: {
    agents: {
      table: 'systemagents',
      key: 'instance_name',
      fromRow: (row) => ({
        agent_type: row.agent_type as string,
        description: text(row.description),
        status: row.status as string,
        operational_state: row.operational_state as string,
        namespace: text(row.namespace),
        last_heartbeat: row.last_heartbeat as string,
        last_seen: row.last_seen as string,
        pid: int(row.pid) ?? null,
        hostname: text(row.hostname),
        execution_id: text(row.execution_id),
        run_id: text(row.run_id),
        heartbeat_count: row.heartbeat_count as number,
        messages_sent: row.messages_sent as number,
        created_at: row.created_at as string,
      }),
      // the batch's senders are looked up in one query, not one per message
      keyOf: (e) => (e.parsed?.kind === 'message' ? e.parsed.message.sender : undefined),
      toWrite: (name, a) => ({
        sql: UPSERT_AGENT,
        params: [
          name,
          a.agent_type,
          a.description,
          a.status,
          a.operational_state,
          a.namespace,
          a.last_heartbeat,
          a.pid,
          a.hostname,
          a.execution_id,
          a.run_id,
          a.heartbeat_count,
          a.messages_sent,
          a.created_at,
          a.last_heartbeat,
          a.last_seen,
        ],
      }),
    },
    clock: {
      table: 'log_clock',
      key: 'id',
      fromRow: (row) => ({
        latest: row.latest as string,
        ms: Date.parse(row.latest as string),
        lastOwnTime: undefined,
      }),
      toWrite: (id, c) => ({ sql: SET_CLOCK, params: [id, c.latest] }),
    },
  },
  evolve(e, state) {
    // The log's clock is the workflow clock: only times the events carry, never when the store recorded them.
    const clock = state.clock.get(CLOCK);
    if (clock !== undefined && e.ownTime !== clock.lastOwnTime && notLater(e.ownTime, clock.latest)) {
      clock.lastOwnTime = e.ownTime;
    } else if (clock === undefined || e.ownTime !== clock.lastOwnTime) {
      const ms = e.ownTime === undefined ? Number.NaN : Date.parse(e.ownTime);
      if (clock === undefined) {
        if (!Number.isNaN(ms))
          state.clock.put(CLOCK, { latest: new Date(ms).toISOString(), ms, lastOwnTime: e.ownTime });
      } else {
        clock.lastOwnTime = e.ownTime;
        if (ms > clock.ms) {
          clock.ms = ms;
          clock.latest = new Date(ms).toISOString();
          state.clock.put(CLOCK, clock);
        }
      }
    }
    if (e.parsed?.kind !== 'message') return NO_WRITES;
    if (e.parsed.message.msg_type !== 'agent_heartbeat') {
      if (e.parsed.message.msg_type === 'agent_log') return NO_WRITES;
      const sender = state.agents.get(e.parsed.message.sender);
      if (sender) {
        sender.messages_sent += 1;
        state.agents.put(e.parsed.message.sender, sender);
      }
      return NO_WRITES;
    }
    const m = e.parsed.message;
    const before = state.agents.get(m.instance_name);
    state.agents.put(m.instance_name, {
      agent_type: m.agent_type,
      description: m.description ?? before?.description ?? null,
      status: m.status,
      operational_state: m.operational_state,
      namespace: m.namespace,
      last_heartbeat: e.time,
      last_seen: e.recordedAt.toISOString(),
      pid: int(m.pid) ?? null,
      hostname: m.hostname,
      execution_id: m.execution_id,
      run_id: m.run_id,
      heartbeat_count: (before?.heartbeat_count ?? 0) + 1,
      messages_sent: before?.messages_sent ?? 0,
      created_at: before?.created_at ?? e.time,
    });
    return NO_WRITES;
  },
};

/** `daq_simulator-agent-swf-1` → `daq_simulator` (the testbed's AppLog app_name is always `base_agent`). */
export function appNameOf(instanceName: string): string {
  const i = instanceName.indexOf('-agent');
  return i > 0 ? instanceName.slice(0, i) : instanceName;
}

const INSERT_LOG = `INSERT INTO applog (position, app_name, instance_name, timestamp, level, levelname, message,
  module, funcname, lineno, process, thread, namespace, execution_id, run_id, extra_data)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (position) DO NOTHING`;

export const logsProjection: Projection = {
  name: 'logs',
  state: {},
  evolve(e) {
    if (e.parsed?.kind !== 'message' || e.parsed.message.msg_type !== 'agent_log') return NO_WRITES;
    const m = e.parsed.message;
    const d = isRecord(e.data) ? e.data : {};
    const extra: Record<string, unknown> = {};
    for (const k of ['execution_id', 'run_id', 'workflow_name', 'username', 'namespace'] as const) {
      if (d[k] !== undefined && d[k] !== null) extra[k] = d[k];
    }
    if (isRecord(d.extra_data)) Object.assign(extra, d.extra_data);
    return [
      {
        sql: INSERT_LOG,
        params: [
          Number(e.position),
          str(d.app_name) ?? appNameOf(m.instance_name),
          m.instance_name,
          e.time,
          m.level,
          m.levelname,
          m.message,
          str(d.module) ?? null,
          str(d.funcname) ?? null,
          int(d.lineno) ?? null,
          int(d.process) ?? null,
          int(d.thread) ?? null,
          m.namespace,
          m.execution_id ?? null,
          m.run_id ?? null,
          json(extra),
        ],
      },
    ];
  },
};
