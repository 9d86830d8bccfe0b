/**
 * The read side's questions, shared by REST, MCP and the CLI: each list declares its filters (`filters.ts`) and
 * how its rows look (the testbed monitor's field names, testbed-facts §3), and runs as one parameterized query.
 * Nothing here writes.
 */
import { NotFoundError, ValidationError } from '../errors.js';
import { machineDefinitions } from '../machines/export.js';
import { RUN_STATE_FIELDS } from '../machines/run.js';
import type { SqlValue, ViewsDb } from './db.js';
import type { FilterSpec, FilterValues, PageRequest } from './filters.js';
import { runStateDifferences, TESTBED_FROM } from './testbedRecords.js';

type Raw = Record<string, unknown>;
export type Row = Record<string, unknown>;

export interface ListResult<T = Row> {
  /** Rows matching the filters, before paging. */
  count: number;
  rows: T[];
}

export interface ListRequest {
  filters?: FilterValues;
  page?: PageRequest | undefined;
  order?: 'asc' | 'desc';
}

interface FilterDef extends FilterSpec {
  /** SQL with `?` for the value (each `?` gets it). */
  where: string;
  bind?: (v: FilterValue) => SqlValue;
}
type FilterValue = FilterValues[string];

interface ListDef {
  name: string;
  /** FROM clause; may use `@stale_before` and `@now`. */
  from: string;
  /**
   * A plain table that answers the same when `table` (the REST-written records merged into `from`) is empty — the
   * common case: a UNION cannot use the table's indexes for ORDER BY ... LIMIT, so a page of 100 of 105,000 slices
   * would sort them all.
   */
  whenEmpty?: { table: string; from: string };
  filters: FilterDef[];
  order: { asc: string; desc: string };
  defaultOrder: 'asc' | 'desc';
  map: (r: Raw) => Row;
}

const parseJson = (v: unknown): unknown => {
  if (typeof v !== 'string') return v ?? null;
  try {
    return JSON.parse(v) as unknown;
  } catch {
    return v;
  }
};

const likeEscape = (v: FilterValue): string => `%${String(v).replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

const timeFilters = (column: string, what: string): FilterDef[] => [
  {
    name: 'start_time',
    kind: 'time',
    where: `${column} >= ?`,
    description: `Only rows whose ${what} is at or after this ISO-8601 time (UTC when no zone is given).`,
  },
  {
    name: 'end_time',
    kind: 'time',
    where: `${column} <= ?`,
    description: `Only rows whose ${what} is at or before this ISO-8601 time (UTC when no zone is given).`,
  },
];

const namespaceFilter: FilterDef = {
  name: 'namespace',
  kind: 'text',
  where: 'namespace = ?',
  description: 'Testbed namespace (isolates testbed instances), e.g. "torre1".',
};
const executionFilter: FilterDef = {
  name: 'execution_id',
  kind: 'text',
  where: 'execution_id = ?',
  description: 'Workflow execution id, e.g. "fast_processing_default-swf-0001".',
};
const runFilter: FilterDef = {
  name: 'run_number',
  kind: 'int',
  where: 'run_number = ?',
  description: 'Run number, e.g. 100010.',
};

export const EXECUTION_STATUSES = ['running', 'completed', 'failed', 'terminated'] as const;
export const RUN_PHASES = ['initializing', 'imminent', 'physics', 'standby', 'completed'] as const;
export const SLICE_STATUSES = ['queued', 'processing', 'completed', 'failed'] as const;
export const FILE_STATUSES = ['registered', 'processing', 'processed', 'failed', 'done'] as const;
export const AGENT_STATUSES = ['OK', 'WARNING', 'ERROR', 'EXITED', 'UNKNOWN', 'all'] as const;

// ---- row shapes ----------------------------------------------------------------------------------

const executionRow = (r: Raw): Row => ({
  execution_id: r.execution_id,
  workflow_name: r.workflow_name,
  namespace: r.namespace,
  parameter_values: parseJson(r.parameter_values),
  performance_metrics: parseJson(r.performance_metrics),
  status: r.status,
  start_time: r.start_time,
  end_time: r.end_time ?? null,
  executed_by: r.executed_by,
  workflow_definition: r.workflow_definition ?? null,
  machine_hash: r.machine_hash ?? null,
  reason: r.reason ?? null,
  stop_requested_at: r.stop_requested_at ?? null,
  run_numbers: typeof r.run_numbers === 'string' && r.run_numbers !== '' ? r.run_numbers.split(',').map(Number) : [],
});

const durationSeconds = (start: unknown, end: unknown): number | null => {
  if (typeof start !== 'string' || typeof end !== 'string') return null;
  const d = (Date.parse(end) - Date.parse(start)) / 1000;
  return Number.isFinite(d) ? d : null;
};

const runRow = (r: Raw): Row => ({
  // A run recorded through the testbed's REST API has its own primary key; ours is named by its number.
  run_id: r.run_pk ?? String(r.run_number),
  run_number: r.run_number,
  execution_id: r.execution_id ?? null,
  namespace: r.namespace ?? null,
  start_time: r.start_time ?? null,
  end_time: r.end_time ?? null,
  duration_seconds: durationSeconds(r.start_time, r.end_time),
  run_conditions: parseJson(r.run_conditions) ?? {},
  total_stf_files: r.total_stf_files ?? null,
  stf_file_count: r.stf_file_count ?? 0,
  dataset: r.dataset ?? null,
  phase: r.phase ?? null,
  finished: r.finished === 1,
});

const RUN_STATE_ROW_FIELDS = [
  'run_number',
  ...RUN_STATE_FIELDS,
  'refusals',
  'finished_at',
  'state_changed_at',
  'updated_at',
  'execution_id',
  'namespace',
] as const;

const runStateRow = (r: Raw): Row => {
  const out: Row = {};
  for (const f of RUN_STATE_ROW_FIELDS) out[f] = r[f] ?? null;
  out.finished = r.finished === 1;
  out.metadata = parseJson(r.metadata);
  // 'reported': what a testbed agent wrote through REST; 'log': what swf-es derives from the messages.
  out.source = r.source ?? 'log';
  return out;
};

const stfRow = (r: Raw): Row => ({
  file_id: r.file_id,
  run: r.run_pk ?? r.run_number,
  run_number: r.run_number,
  stf_filename: r.stf_filename,
  sequence: r.sequence ?? null,
  file_size_bytes: r.file_size_bytes ?? null,
  checksum: r.checksum ?? null,
  created_at: r.created_at,
  updated_at: r.updated_at,
  status: r.status,
  machine_state: r.machine_state ?? null,
  daq_state: r.daq_state ?? null,
  daq_substate: r.daq_substate ?? null,
  tf_count: r.tf_count ?? null,
  workflow_id: r.workflow_id ?? null,
  workflow_status: r.workflow_status ?? null,
  tf_file_count: r.tf_file_count,
  execution_id: r.execution_id ?? null,
  namespace: r.namespace ?? null,
  metadata: parseJson(r.metadata),
});

const sampleRow = (r: Raw): Row => ({
  tf_file_id: r.tf_file_id,
  stf_file: r.stf_filename,
  stf_filename: r.stf_filename,
  tf_filename: r.tf_filename,
  run_number: r.run_number,
  tf_first: r.tf_first ?? null,
  tf_last: r.tf_last ?? null,
  tf_count: r.tf_count ?? null,
  file_size_bytes: r.file_size_bytes ?? null,
  checksum: r.checksum ?? null,
  status: r.status,
  slice_count: r.slice_count,
  created_at: r.created_at,
  updated_at: r.updated_at,
  execution_id: r.execution_id ?? null,
  namespace: r.namespace ?? null,
  metadata: parseJson(r.metadata),
});

const sliceRow = (r: Raw): Row => ({
  id: r.id,
  tf_filename: r.tf_filename,
  fastmon_file: r.fastmon_file,
  stf_filename: r.stf_filename,
  run_number: r.run_number,
  slice_id: r.slice_id,
  tf_first: r.tf_first,
  tf_last: r.tf_last,
  tf_count: r.tf_count,
  status: r.status,
  retries: r.retries,
  attempt: r.attempt,
  assigned_worker: r.assigned_worker ?? null,
  assigned_at: r.assigned_at ?? null,
  lease_deadline: r.lease_deadline ?? null,
  completed_at: r.completed_at ?? null,
  last_error: r.last_error ?? null,
  created_at: r.created_at,
  updated_at: r.updated_at,
  execution_id: r.execution_id ?? null,
  namespace: r.namespace ?? null,
});

const sliceDetail = (r: Raw): Row => ({
  ...sliceRow(r),
  max_retries: r.max_retries,
  refusals: r.refusals,
  last_refusal: parseJson(r.last_refusal),
  metadata: parseJson(r.metadata),
});

const messageRow = (r: Raw): Row => ({
  message_id: r.message_id,
  position: r.position,
  message_type: r.message_type,
  sender_agent: r.sender_agent ?? null,
  namespace: r.namespace ?? null,
  execution_id: r.execution_id ?? null,
  run_id: r.run_id ?? null,
  queue_name: r.queue_name ?? null,
  correlation_id: r.correlation_id ?? null,
  causation_id: r.causation_id ?? null,
  sent_at: r.sent_at,
});

const logRow = (r: Raw): Row => ({
  id: r.id,
  position: r.position,
  app_name: r.app_name,
  instance_name: r.instance_name,
  timestamp: r.timestamp,
  level: r.level,
  levelname: r.levelname,
  message: r.message,
  module: r.module ?? null,
  funcname: r.funcname ?? null,
  lineno: r.lineno ?? null,
  process: r.process ?? null,
  thread: r.thread ?? null,
  extra_data: parseJson(r.extra_data),
});

const agentRow = (r: Raw): Row => ({
  instance_name: r.instance_name,
  agent_type: r.agent_type,
  description: r.description ?? null,
  status: r.status,
  operational_state: r.operational_state,
  namespace: r.namespace ?? null,
  last_heartbeat: r.last_heartbeat,
  stale: r.stale === 1,
  pid: r.pid ?? null,
  hostname: r.hostname ?? null,
  execution_id: r.execution_id ?? null,
  run_id: r.run_id ?? null,
  heartbeat_count: r.heartbeat_count,
  messages_sent: r.messages_sent ?? 0,
  created_at: r.created_at,
  updated_at: r.updated_at,
});

// ---- the lists -----------------------------------------------------------------------------------

/** An agent with no heartbeat recorded for this long (the store's wall clock) is shown as EXITED. */
export const STALE_AFTER_MS = 3 * 60_000;

export type ListName =
  'executions' | 'runs' | 'runStates' | 'stfFiles' | 'fastmonFiles' | 'slices' | 'messages' | 'logs' | 'agents';

export const LISTS: Record<ListName, ListDef> = {
  executions: {
    name: 'workflow executions',
    from: TESTBED_FROM.executions,
    filters: [
      namespaceFilter,
      {
        name: 'status',
        kind: 'enum',
        values: EXECUTION_STATUSES,
        where: 'status = ?',
        description: 'Execution status.',
      },
      { name: 'executed_by', kind: 'text', where: 'executed_by = ?', description: 'The user who ran it.' },
      {
        name: 'workflow_name',
        kind: 'text',
        where: 'workflow_name = ?',
        description: 'Workflow name, e.g. "fast_processing_default".',
      },
      { name: 'execution_id', kind: 'text', where: 'execution_id = ?', description: 'One execution by id.' },
      {
        name: 'currently_running',
        kind: 'bool',
        where: `(CASE WHEN status = 'running' THEN 1 ELSE 0 END) = ?`,
        bind: (v) => (v ? 1 : 0),
        description: 'true: only executions still running; false: only finished ones.',
      },
      ...timeFilters('start_time', 'start time'),
    ],
    order: { asc: 'start_time ASC, execution_id ASC', desc: 'start_time DESC, execution_id DESC' },
    defaultOrder: 'desc',
    map: executionRow,
  },
  runs: {
    name: 'runs',
    from: TESTBED_FROM.runs,
    filters: [
      runFilter,
      executionFilter,
      namespaceFilter,
      { name: 'phase', kind: 'enum', values: RUN_PHASES, where: 'phase = ?', description: 'RunState phase.' },
      ...timeFilters('start_time', 'start time'),
    ],
    order: { asc: 'run_number ASC', desc: 'run_number DESC' },
    defaultOrder: 'desc',
    map: runRow,
  },
  runStates: {
    name: 'run states',
    from: TESTBED_FROM.runStates,
    filters: [
      runFilter,
      executionFilter,
      namespaceFilter,
      { name: 'phase', kind: 'enum', values: RUN_PHASES, where: 'phase = ?', description: 'RunState phase.' },
      {
        name: 'finished',
        kind: 'bool',
        where: 'finished = ?',
        bind: (v) => (v ? 1 : 0),
        description: 'true: runs whose phase is completed with every slice final.',
      },
    ],
    order: { asc: 'run_number ASC', desc: 'run_number DESC' },
    defaultOrder: 'desc',
    map: runStateRow,
  },
  stfFiles: {
    name: 'STF files',
    from: TESTBED_FROM.stfFiles,
    filters: [
      runFilter,
      {
        name: 'status',
        kind: 'enum',
        values: FILE_STATUSES,
        where: 'status = ?',
        description: 'File status: registered (announced by stf_gen) or processed (stf_ready sent).',
      },
      {
        name: 'machine_state',
        kind: 'text',
        where: 'machine_state = ?',
        description: 'DAQ state when the STF was taken, e.g. "run".',
      },
      {
        name: 'stf_filename',
        kind: 'text',
        where: 'stf_filename = ?',
        description: 'One STF by file name, e.g. "swf.100010.000001.stf".',
      },
      executionFilter,
      namespaceFilter,
      ...timeFilters('created_at', 'creation time'),
    ],
    order: { asc: 'created_at ASC, stf_filename ASC', desc: 'created_at DESC, stf_filename DESC' },
    defaultOrder: 'desc',
    map: stfRow,
  },
  fastmonFiles: {
    name: 'TF samples',
    from: TESTBED_FROM.fastmonFiles,
    filters: [
      runFilter,
      {
        name: 'tf_filename',
        kind: 'text',
        where: 'tf_filename = ?',
        description: 'One TF sample by file name, e.g. "swf.100010.000001_tf_001.tf".',
      },
      { name: 'stf_filename', kind: 'text', where: 'stf_filename = ?', description: 'The samples of one STF.' },
      { name: 'status', kind: 'enum', values: FILE_STATUSES, where: 'status = ?', description: 'Sample status.' },
      executionFilter,
      namespaceFilter,
      ...timeFilters('created_at', 'creation time'),
    ],
    order: { asc: 'created_at ASC, tf_filename ASC', desc: 'created_at DESC, tf_filename DESC' },
    defaultOrder: 'desc',
    map: sampleRow,
  },
  slices: {
    name: 'TF slices',
    from: TESTBED_FROM.slices,
    whenEmpty: { table: 'testbed_tf_slices', from: 'tf_slices' },
    filters: [
      { name: 'id', kind: 'int', where: 'id = ?', description: 'One slice by its row id.' },
      runFilter,
      {
        name: 'status',
        kind: 'enum',
        values: SLICE_STATUSES,
        where: 'status = ?',
        description: 'Slice status: queued, processing, completed, or failed (failed for good, no retry left).',
      },
      {
        name: 'tf_filename',
        kind: 'text',
        where: 'tf_filename = ?',
        description: 'The slice\'s own file name, e.g. "swf.100010.000001_tf_001_slice_000.tf".',
      },
      {
        name: 'fastmon_file',
        kind: 'text',
        where: 'fastmon_file = ?',
        description: 'The TF sample the slices were cut from, e.g. "swf.100010.000001_tf_001.tf".',
      },
      { name: 'stf_filename', kind: 'text', where: 'stf_filename = ?', description: 'The STF the slices come from.' },
      {
        name: 'slice_id',
        kind: 'int',
        where: 'slice_id = ?',
        description: 'Slice number within its sample (0-based).',
      },
      {
        name: 'assigned_worker',
        kind: 'text',
        where: 'assigned_worker = ?',
        description: 'The worker that took the slice (last attempt).',
      },
      { name: 'attempt', kind: 'int', where: 'attempt = ?', description: 'The attempt number (1 = first try).' },
      executionFilter,
      namespaceFilter,
      ...timeFilters('created_at', 'creation time'),
    ],
    order: { asc: 'id ASC', desc: 'id DESC' },
    defaultOrder: 'desc',
    map: sliceRow,
  },
  messages: {
    name: 'workflow messages',
    from: 'workflow_messages',
    filters: [
      executionFilter,
      namespaceFilter,
      {
        name: 'run_number',
        kind: 'int',
        where: 'run_id = ?',
        bind: (v) => String(v),
        description: 'Run number the message is about.',
      },
      {
        name: 'message_type',
        kind: 'text',
        where: 'message_type = ?',
        description: 'msg_type, e.g. "stf_gen", "slice", "slice_result".',
      },
      {
        name: 'agent',
        kind: 'text',
        where: 'sender_agent = ?',
        description: 'The agent that sent it (its instance name).',
      },
      ...timeFilters('sent_at', 'send time'),
    ],
    order: { asc: 'position ASC', desc: 'position DESC' },
    defaultOrder: 'desc',
    map: messageRow,
  },
  logs: {
    name: 'logs',
    from: 'applog',
    filters: [
      {
        name: 'app_name',
        kind: 'text',
        where: 'app_name = ?',
        description: 'Agent kind, e.g. "daq_simulator", "fast_processing", "panda".',
      },
      { name: 'instance_name', kind: 'text', where: 'instance_name = ?', description: "The agent's instance name." },
      executionFilter,
      {
        name: 'run_number',
        kind: 'int',
        where: 'run_id = ?',
        bind: (v) => String(v),
        description: 'Run number.',
      },
      namespaceFilter,
      {
        name: 'level',
        kind: 'level',
        where: 'level >= ?',
        description: 'Minimum level: DEBUG, INFO, WARNING, ERROR, CRITICAL (or 0-50).',
      },
      {
        name: 'search',
        kind: 'text',
        where: `message LIKE ? ESCAPE '\\'`,
        bind: likeEscape,
        description: 'Text the message contains (case-insensitive for ASCII).',
      },
      ...timeFilters('timestamp', 'time'),
    ],
    order: { asc: 'timestamp ASC, id ASC', desc: 'timestamp DESC, id DESC' },
    defaultOrder: 'desc',
    map: logRow,
  },
  agents: {
    name: 'agents',
    from: `(SELECT instance_name, agent_type, description,
        CASE WHEN last_seen < @stale_before THEN 'EXITED' ELSE status END AS status,
        CASE WHEN last_seen < @stale_before THEN 'EXITED' ELSE operational_state END AS operational_state,
        CASE WHEN last_seen < @stale_before THEN 1 ELSE 0 END AS stale,
        namespace, last_heartbeat, pid, hostname, execution_id, run_id, heartbeat_count, messages_sent, created_at,
        updated_at
      FROM systemagents)`,
    filters: [
      namespaceFilter,
      {
        name: 'agent_type',
        kind: 'text',
        where: 'agent_type = ?',
        description: 'Agent type, e.g. "DATA", "fastmon", "Fast_Processing", "DAQ_Simulator", "PanDA-worker".',
      },
      {
        name: 'status',
        kind: 'enum',
        values: AGENT_STATUSES,
        where: `(? = 'all' OR status = ?)`,
        description: 'OK, WARNING, ERROR, EXITED (no heartbeat recorded for 3 minutes of wall-clock time), or "all".',
      },
      {
        name: 'active',
        kind: 'bool',
        where: `(CASE WHEN status = 'EXITED' THEN 0 ELSE 1 END) = ?`,
        bind: (v) => (v ? 1 : 0),
        description: 'true: leave out agents shown as EXITED; false: only those.',
      },
      {
        name: 'execution_id',
        kind: 'text',
        where: `(execution_id = ? OR instance_name IN (SELECT DISTINCT sender_agent FROM workflow_messages WHERE execution_id = ?))`,
        description: 'Agents that worked for this execution (heartbeat or messages).',
      },
      ...timeFilters('last_heartbeat', 'last heartbeat'),
    ],
    order: { asc: 'last_heartbeat ASC, instance_name ASC', desc: 'last_heartbeat DESC, instance_name ASC' },
    defaultOrder: 'desc',
    map: agentRow,
  },
};

/** The filters of a list (for parsing a query string or building a tool schema). */
export const filtersOf = (list: ListName): readonly FilterSpec[] => LISTS[list].filters;

/** The log's latest workflow-clock time (staleness and default time windows are judged against it). */
export function logClock(db: ViewsDb): string | undefined {
  return db.prepare<{ latest: string }>(`SELECT latest FROM log_clock WHERE id = 1`).get()?.latest;
}

function contextParams(_db: ViewsDb, from: string): Record<string, SqlValue> {
  if (!from.includes('@stale_before')) return {};
  // Liveness by the wall clock, against when the store recorded each heartbeat: a virtual-time run stamps its
  // events up to twenty minutes ahead, so the workflow clock cannot tell a live agent from a gone one.
  return { stale_before: new Date(Date.now() - STALE_AFTER_MS).toISOString() };
}

/** Runs a list with filters and an optional page. */
export function list(db: ViewsDb, name: ListName, request: ListRequest = {}): ListResult {
  const def = LISTS[name];
  const filters = request.filters ?? {};
  const where: string[] = [];
  const params: SqlValue[] = [];
  for (const [key, value] of Object.entries(filters)) {
    const f = def.filters.find((x) => x.name === key);
    if (!f) throw new ValidationError(`unknown filter '${key}' for ${def.name}`, { field: key });
    const bound = f.bind ? f.bind(value) : typeof value === 'boolean' ? (value ? 1 : 0) : value;
    const n = f.where.split('?').length - 1;
    where.push(f.where);
    for (let i = 0; i < n; i++) params.push(bound);
  }
  // Named context parameters and positional filter values cannot mix in one statement: inline the context ones
  // as positional too, in the order they appear.
  const source =
    def.whenEmpty && !db.prepare(`SELECT 1 FROM ${def.whenEmpty.table} LIMIT 1`).get([])
      ? def.whenEmpty.from
      : def.from;
  const ctx = contextParams(db, source);
  const fromParams: SqlValue[] = [];
  const from = source.replace(/@(\w+)/g, (_m, k: string) => {
    fromParams.push(ctx[k] ?? null);
    return '?';
  });
  const whereSql = where.length ? ` WHERE ${where.join(' AND ')}` : '';
  const order = def.order[request.order ?? def.defaultOrder];
  const all = [...fromParams, ...params];
  if (!request.page) {
    const rows = db.prepare<Raw>(`SELECT * FROM ${from} AS t${whereSql} ORDER BY ${order}`).all(all);
    return { count: rows.length, rows: rows.map(def.map) };
  }
  const limit = request.page.limit ?? 100;
  const offset = request.page.offset ?? 0;
  return db.read(() => {
    // The page first: its read fixes the snapshot that the views version and the count below then belong to.
    const rows =
      limit === 0
        ? []
        : db
            .prepare<Raw>(`SELECT * FROM ${from} AS t${whereSql} ORDER BY ${order} LIMIT ? OFFSET ?`)
            .all([...all, limit, offset]);
    const countSql = `SELECT count(*) AS n FROM ${from} AS t${whereSql}`;
    const count = () => db.prepare<{ n: number }>(countSql).get(all)?.n ?? 0;
    // A list whose source depends on the time of asking (the agents' staleness) is counted every time.
    return { count: fromParams.length > 0 ? count() : cachedCount(db, countSql, all, count), rows: rows.map(def.map) };
  });
}

/**
 * The counts of paged lists, kept while the views stay as they are. Counting is most of a page's cost when many rows
 * match (a finished run's 105,000 completed slices: a walk of 105,000 index entries, for a page of 200 read in a
 * fraction of that), and a client pages, refreshes and polls the same list. The views' version is SQLite's
 * `data_version` (moves when another connection commits: the projector's writer) with `total_changes()` (this
 * connection's own writes), read in the same read transaction as the count, so a count is never used for a
 * snapshot it was not made from.
 */
const COUNTS_KEPT = 256;
const countCaches = new WeakMap<ViewsDb, { version: string; counts: Map<string, number> }>();

function cachedCount(db: ViewsDb, sql: string, params: readonly SqlValue[], count: () => number): number {
  const v = db
    .prepare<{ v: number; c: number }>(
      'SELECT (SELECT data_version FROM pragma_data_version) AS v, total_changes() AS c',
    )
    .get([]);
  const version = `${v?.v}:${v?.c}`;
  let cache = countCaches.get(db);
  if (!cache || cache.version !== version || cache.counts.size >= COUNTS_KEPT) {
    cache = { version, counts: new Map() };
    countCaches.set(db, cache);
  }
  // (a bigint as an object, which no parameter is: 5n and '5' stay apart)
  const key = `${sql}\u0000${JSON.stringify(params.map((x) => (typeof x === 'bigint' ? { bigint: String(x) } : x)))}`;
  let n = cache.counts.get(key);
  if (n === undefined) {
    n = count();
    cache.counts.set(key, n);
  }
  return n;
}

// ---- details ---------------------------------------------------------------------------------------

export function getExecution(db: ViewsDb, executionId: string): Row {
  const r = db.prepare<Raw>(`SELECT * FROM ${LISTS.executions.from} AS t WHERE execution_id = ?`).get([executionId]);
  if (!r) throw new NotFoundError(`no workflow execution '${executionId}'`);
  return executionRow(r);
}

export function getRun(db: ViewsDb, run: number): Row {
  const r = db.prepare<Raw>(`SELECT * FROM ${LISTS.runs.from} AS t WHERE run_number = ?`).get([run]);
  if (!r) throw new NotFoundError(`no run ${run}`);
  return runRow(r);
}

export function getRunState(db: ViewsDb, run: number): Row {
  const r = db.prepare<Raw>(`SELECT * FROM ${LISTS.runStates.from} AS t WHERE run_number = ?`).get([run]);
  if (!r) throw new NotFoundError(`no RunState for run ${run}`);
  const row = runStateRow(r);
  if (row.source === 'reported') {
    // Keep both: the agent's report at the top (it reads it back to count on), what the log implies beside it.
    const d = db.prepare<Raw>(`SELECT * FROM run_states WHERE run_number = ?`).get([run]);
    const derived = d ? { ...runStateRow(d), source: 'log' } : null;
    row.derived = derived;
    row.differences = derived ? runStateDifferences(row, derived) : [];
  }
  return row;
}

export function getStfFile(db: ViewsDb, key: string): Row {
  const r = db
    .prepare<Raw>(`SELECT * FROM ${LISTS.stfFiles.from} AS t WHERE stf_filename = ? OR file_id = ?`)
    .get([key, key]);
  if (!r) throw new NotFoundError(`no STF file '${key}'`);
  return stfRow(r);
}

export function getSample(db: ViewsDb, key: string): Row {
  const r = db
    .prepare<Raw>(`SELECT * FROM ${LISTS.fastmonFiles.from} AS t WHERE tf_filename = ? OR tf_file_id = ?`)
    .get([key, key]);
  if (!r) throw new NotFoundError(`no TF sample '${key}'`);
  return sampleRow(r);
}

/** A slice by row id, by its own file name, or by (sample file name, slice_id). */
export function getSlice(
  db: ViewsDb,
  key: { id?: number; tf_filename?: string; fastmon_file?: string; slice_id?: number },
): Row {
  let r: Raw | undefined;
  let what: string;
  if (key.id !== undefined) {
    r = db.prepare<Raw>(`SELECT * FROM ${LISTS.slices.from} AS t WHERE id = ?`).get([key.id]);
    what = `id ${key.id}`;
  } else if (key.tf_filename !== undefined) {
    r = db.prepare<Raw>(`SELECT * FROM ${LISTS.slices.from} AS t WHERE tf_filename = ?`).get([key.tf_filename]);
    what = `'${key.tf_filename}'`;
  } else if (key.fastmon_file !== undefined && key.slice_id !== undefined) {
    r = db
      .prepare<Raw>(`SELECT * FROM ${LISTS.slices.from} AS t WHERE fastmon_file = ? AND slice_id = ?`)
      .get([key.fastmon_file, key.slice_id]);
    what = `${key.slice_id} of sample '${key.fastmon_file}'`;
  } else {
    throw new ValidationError(
      'name the slice: id, tf_filename (the slice file), or fastmon_file (the sample) with slice_id',
      {
        field: 'tf_filename',
      },
    );
  }
  if (!r) throw new NotFoundError(`no TF slice ${what}`);
  return sliceDetail(r);
}

/**
 * The log positions of the events naming a slice (oldest first), from its row: `undefined` when the log has no
 * such slice (a slice only the testbed's REST API wrote has no events of its own).
 */
export function sliceEventPositions(db: ViewsDb, tfFilename: string): number[] | undefined {
  const r = db.prepare<Raw>('SELECT event_positions FROM tf_slices WHERE tf_filename = ?').get([tfFilename]);
  if (!r) return undefined;
  const list = typeof r.event_positions === 'string' ? r.event_positions : '';
  return list === '' ? [] : list.split(',').map(Number);
}

export function getAgent(db: ViewsDb, name: string): Row {
  const { rows } = list(db, 'agents', { filters: {} });
  const a = rows.find((r) => r.instance_name === name);
  if (!a) throw new NotFoundError(`no agent '${name}'`);
  return a;
}

export function getLog(db: ViewsDb, id: number): Row {
  const r = db.prepare<Raw>(`SELECT * FROM applog WHERE id = ?`).get([id]);
  if (!r) throw new NotFoundError(`no log entry ${id}`);
  return logRow(r);
}

/** Slices of a run by status (all four, zeros included) and in total. */
export function sliceCounts(db: ViewsDb, run: number): Record<string, number> {
  const rows = db
    .prepare<{ status: string; n: number }>(
      `SELECT status, count(*) AS n FROM ${LISTS.slices.from} AS t WHERE run_number = ? GROUP BY status`,
    )
    .all([run]);
  const out: Record<string, number> = { queued: 0, processing: 0, completed: 0, failed: 0 };
  let total = 0;
  for (const r of rows) {
    out[r.status] = r.n;
    total += r.n;
  }
  out.total = total;
  return out;
}

/** The machine definitions an execution recorded (what its runs were folded with), else today's. */
export function machinesOf(
  db: ViewsDb,
  executionId?: string,
): { execution_id: string | null; machine_hash: string | null; definitions: unknown } {
  if (executionId !== undefined) {
    const r = db
      .prepare<{ machine_hash: string | null; machine_definitions: string | null }>(
        `SELECT machine_hash, machine_definitions FROM workflow_executions WHERE execution_id = ?`,
      )
      .get([executionId]);
    if (!r) throw new NotFoundError(`no workflow execution '${executionId}'`);
    if (r.machine_definitions)
      return { execution_id: executionId, machine_hash: r.machine_hash, definitions: parseJson(r.machine_definitions) };
  }
  return { execution_id: executionId ?? null, machine_hash: null, definitions: machineDefinitions() };
}

const LIFECYCLE = ['run_imminent', 'start_run', 'pause_run', 'resume_run', 'end_run'];

/**
 * One execution at a glance (the testbed's `get_workflow_monitor`): status, its run's phase and counters, the
 * lifecycle events, STF count and the errors (refused transitions, rejected messages, invalid events, logs at
 * ERROR and above).
 */
export function workflowMonitor(db: ViewsDb, executionId: string): Row {
  const execution = getExecution(db, executionId);
  return db.read(() => {
    const runs = (execution.run_numbers as number[]).map((n): Row => {
      const state = db.prepare<Raw>(`SELECT * FROM ${LISTS.runStates.from} AS t WHERE run_number = ?`).get([n]);
      return {
        run_number: n,
        ...(state ? runStateRow(state) : { phase: 'initializing' }),
        slice_counts: sliceCounts(db, n),
      };
    });
    const events = db
      .prepare<Raw>(
        `SELECT position, message_type, sent_at, run_id, queue_name FROM workflow_messages
         WHERE execution_id = ? AND message_type IN (${LIFECYCLE.map(() => '?').join(', ')}) ORDER BY position`,
      )
      .all([executionId, ...LIFECYCLE])
      // the fast processing agent's end_run to the workers is not a lifecycle step
      .filter((r) => r.queue_name !== '/topic/panda.workers')
      .map((r) => ({ type: r.message_type, time: r.sent_at, run_id: r.run_id, position: r.position }));
    const problems = db
      .prepare<Raw>(
        `SELECT type, agent, reason, created_at, position FROM workflow_problems WHERE execution_id = ? ORDER BY position LIMIT 10`,
      )
      .all([executionId])
      .map((r) => ({
        source: 'event',
        type: r.type,
        agent: r.agent,
        message: r.reason,
        time: r.created_at,
        position: r.position,
      }));
    const logs = db
      .prepare<Raw>(
        `SELECT id, instance_name, levelname, message, timestamp FROM applog WHERE execution_id = ? AND level >= 40 ORDER BY timestamp LIMIT 10`,
      )
      .all([executionId])
      .map((r) => ({
        source: 'log',
        type: r.levelname,
        agent: r.instance_name,
        message: r.message,
        time: r.timestamp,
        id: r.id,
      }));
    const stfCount =
      db.prepare<{ n: number }>(`SELECT count(*) AS n FROM stf_files WHERE execution_id = ?`).get([executionId])?.n ??
      0;
    const last = runs[runs.length - 1];
    const phase = last ? String(last.phase) : 'unknown';
    return {
      execution_id: executionId,
      status: execution.status,
      phase,
      run_id: last ? String(last.run_number) : null,
      run_numbers: execution.run_numbers,
      stf_count: stfCount,
      events,
      errors: [...problems, ...logs],
      start_time: execution.start_time,
      end_time: execution.end_time,
      duration_seconds: durationSeconds(execution.start_time, execution.end_time),
      namespace: execution.namespace,
      runs,
    };
  });
}
