/**
 * The message store (every wire message with a broker destination: its envelope and log position), the agents (last heartbeat) with the log's
 * clock, and the agents' logs.
 */
import type { ViewsDb } from './db.js';
import { executionIdOf, int, isRecord, type ProjectedEvent, type Projection, runNumberOf, str } from './projection.js';

const json = (v: unknown): string => JSON.stringify(v);

/**
 * Heartbeats and logs are not workflow messages: the testbed sends them over REST, not through the broker, and
 * they have their own tables and endpoints. Everything else our agents send is.
 */
export const isWorkflowMessageType = (type: string): boolean => type !== 'agent_heartbeat' && type !== 'agent_log';

export function createMessagesProjection(db: ViewsDb): Projection {
  const insert = db.prepare(`INSERT INTO workflow_messages (position, message_id, message_type, sender_agent,
    namespace, execution_id, run_id, queue_name, correlation_id, causation_id, stream, sent_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`);
  return {
    name: 'messages',
    apply(e: ProjectedEvent) {
      if (e.parsed?.kind !== 'message' || !isWorkflowMessageType(e.type)) return;
      const m = e.parsed.message;
      const run = runNumberOf(e);
      insert.run([
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
      ]);
    },
    flush() {},
    reset() {},
  };
}

interface AgentEntry {
  instance_name: string;
  agent_type: string;
  description: string | null;
  status: string;
  operational_state: string;
  namespace: string | null;
  last_heartbeat: string;
  pid: number | null;
  hostname: string | null;
  execution_id: string | null;
  run_id: string | null;
  beats: number;
  created_at: string;
}

/** `bulk`: the tables were empty when the fold began and nothing else writes them (see the workflow projection). */
export function createAgentsProjection(db: ViewsDb, options: { bulk?: boolean } = {}): Projection {
  const upsert = db.prepare(`INSERT INTO systemagents (instance_name, agent_type, description, status,
    operational_state, namespace, last_heartbeat, pid, hostname, execution_id, run_id, heartbeat_count, created_at,
    updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (instance_name) DO UPDATE SET agent_type = excluded.agent_type,
    description = coalesce(excluded.description, systemagents.description), status = excluded.status,
    operational_state = excluded.operational_state, namespace = excluded.namespace,
    last_heartbeat = excluded.last_heartbeat, pid = excluded.pid, hostname = excluded.hostname,
    execution_id = excluded.execution_id, run_id = excluded.run_id,
    heartbeat_count = systemagents.heartbeat_count + excluded.heartbeat_count, updated_at = excluded.updated_at`);
  const clockRow = db.prepare<{ latest: string }>(`SELECT latest FROM log_clock WHERE id = 1`);
  const setClock = db.prepare(`INSERT INTO log_clock (id, latest) VALUES (1, ?)
    ON CONFLICT (id) DO UPDATE SET latest = excluded.latest`);
  const pending = new Map<string, AgentEntry>();
  let latestMs = Number.NEGATIVE_INFINITY;
  let latest: string | undefined;
  /** The last event's own time: the next event's is nearly always the same text, which moves the clock no more. */
  let lastOwnTime: string | undefined;
  let changed = false;
  let loaded = options.bulk === true;

  return {
    name: 'agents',
    apply(e) {
      if (!loaded) {
        const row = clockRow.get();
        if (row) {
          latest = row.latest;
          latestMs = Date.parse(row.latest);
        }
        loaded = true;
      }
      // The log's clock is the workflow clock: only times the events carry, never when the store recorded them.
      if (e.ownTime !== lastOwnTime) {
        lastOwnTime = e.ownTime;
        const ms = e.ownTime === undefined ? Number.NaN : Date.parse(e.ownTime);
        if (ms > latestMs) {
          latestMs = ms;
          latest = new Date(ms).toISOString();
          changed = true;
        }
      }
      if (e.parsed?.kind !== 'message' || e.parsed.message.msg_type !== 'agent_heartbeat') return;
      const m = e.parsed.message;
      const before = pending.get(m.instance_name);
      pending.set(m.instance_name, {
        instance_name: m.instance_name,
        agent_type: m.agent_type,
        description: m.description ?? before?.description ?? null,
        status: m.status,
        operational_state: m.operational_state,
        namespace: m.namespace,
        last_heartbeat: e.time,
        pid: int(m.pid) ?? null,
        hostname: m.hostname,
        execution_id: m.execution_id,
        run_id: m.run_id,
        beats: (before?.beats ?? 0) + 1,
        created_at: before?.created_at ?? e.time,
      });
    },
    flush() {
      for (const a of pending.values()) {
        upsert.run([
          a.instance_name,
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
          a.beats,
          a.created_at,
          a.last_heartbeat,
        ]);
      }
      pending.clear();
      if (changed && latest !== undefined) setClock.run([latest]);
      changed = false;
    },
    reset() {
      if (options.bulk === true) throw new Error('a bulk fold cannot start again: its tables are no longer empty');
      pending.clear();
      latestMs = Number.NEGATIVE_INFINITY;
      latest = undefined;
      lastOwnTime = undefined;
      changed = false;
      loaded = false;
    },
  };
}

/** `daq_simulator-agent-swf-1` → `daq_simulator` (the testbed's AppLog app_name is always `base_agent`). */
export function appNameOf(instanceName: string): string {
  const i = instanceName.indexOf('-agent');
  return i > 0 ? instanceName.slice(0, i) : instanceName;
}

export function createLogsProjection(db: ViewsDb): Projection {
  const insert = db.prepare(`INSERT INTO applog (position, app_name, instance_name, timestamp, level, levelname,
    message, module, funcname, lineno, process, thread, namespace, execution_id, run_id, extra_data)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (position) DO NOTHING`);
  return {
    name: 'logs',
    apply(e) {
      if (e.parsed?.kind !== 'message' || e.parsed.message.msg_type !== 'agent_log') return;
      const m = e.parsed.message;
      const d = isRecord(e.data) ? e.data : {};
      const extra: Record<string, unknown> = {};
      for (const k of ['execution_id', 'run_id', 'workflow_name', 'username', 'namespace'] as const) {
        if (d[k] !== undefined && d[k] !== null) extra[k] = d[k];
      }
      if (isRecord(d.extra_data)) Object.assign(extra, d.extra_data);
      insert.run([
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
      ]);
    },
    flush() {},
    reset() {},
  };
}
