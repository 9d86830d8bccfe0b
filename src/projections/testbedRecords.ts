/**
 * The records the real testbed agents write through the REST API (`application/testbedApi`), folded into tables of
 * their own beside the ones the workflow projection derives from the messages. The lists the monitor serves read
 * both (`TESTBED_FROM`): a record an agent wrote wins over the derived row of the same key, except a RunState,
 * which is shown as reported with what the log implies beside it (`reportedRunState`).
 *
 * Every registration or update event carries the whole record as it stands after it, so folding is an upsert and
 * needs no read (it works the same in the pipelined bulk fold).
 */
import { isTestbedEventType } from '../application/testbedApi/records.js';
import type { ViewsDb } from './db.js';
import { isRecord, NO_WRITES, type ProjectedEvent, type Projection, type Write } from './projection.js';

export const TESTBED_TABLES = [
  'testbed_runs',
  'testbed_run_states',
  'testbed_stf_files',
  'testbed_fastmon_files',
  'testbed_tf_slices',
  'testbed_executions',
  'testbed_definitions',
  'testbed_state_events',
  'testbed_subscribers',
  'testbed_namespaces',
] as const;

export const TESTBED_DDL = `
CREATE TABLE IF NOT EXISTS testbed_runs (
  run_number     INTEGER PRIMARY KEY,
  run_pk         INTEGER NOT NULL,
  start_time     TEXT,
  end_time       TEXT,
  run_conditions TEXT
);
CREATE TABLE IF NOT EXISTS testbed_run_states (
  run_number           INTEGER PRIMARY KEY,
  phase                TEXT NOT NULL,
  state                TEXT NOT NULL,
  substate             TEXT,
  target_worker_count  INTEGER,
  active_worker_count  INTEGER,
  stf_samples_received INTEGER,
  slices_created       INTEGER,
  slices_queued        INTEGER,
  slices_processing    INTEGER,
  slices_completed     INTEGER,
  slices_failed        INTEGER,
  state_changed_at     TEXT,
  updated_at           TEXT,
  execution_id         TEXT,
  namespace            TEXT,
  metadata             TEXT
);
CREATE TABLE IF NOT EXISTS testbed_stf_files (
  file_id         TEXT PRIMARY KEY,
  stf_filename    TEXT NOT NULL UNIQUE,
  run_pk          INTEGER,
  run_number      INTEGER NOT NULL,
  sequence        INTEGER,
  machine_state   TEXT,
  daq_state       TEXT,
  daq_substate    TEXT,
  workflow_id     TEXT,
  workflow_status TEXT,
  tf_count        INTEGER,
  file_size_bytes INTEGER,
  checksum        TEXT,
  status          TEXT NOT NULL,
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL,
  namespace       TEXT,
  metadata        TEXT
);
CREATE TABLE IF NOT EXISTS testbed_fastmon_files (
  tf_file_id      TEXT PRIMARY KEY,
  tf_filename     TEXT NOT NULL UNIQUE,
  stf_filename    TEXT NOT NULL,
  run_number      INTEGER,
  tf_first        INTEGER,
  tf_last         INTEGER,
  tf_count        INTEGER,
  file_size_bytes INTEGER,
  checksum        TEXT,
  status          TEXT NOT NULL,
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL,
  namespace       TEXT,
  metadata        TEXT
);
CREATE TABLE IF NOT EXISTS testbed_tf_slices (
  id              INTEGER PRIMARY KEY,
  tf_filename     TEXT NOT NULL,
  fastmon_file    TEXT NOT NULL,
  stf_filename    TEXT,
  run_number      INTEGER NOT NULL,
  execution_id    TEXT,
  namespace       TEXT,
  slice_id        INTEGER NOT NULL,
  tf_first        INTEGER NOT NULL,
  tf_last         INTEGER NOT NULL,
  tf_count        INTEGER NOT NULL,
  status          TEXT NOT NULL,
  retries         INTEGER NOT NULL,
  assigned_worker TEXT,
  assigned_at     TEXT,
  completed_at    TEXT,
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL,
  metadata        TEXT,
  UNIQUE (fastmon_file, slice_id)
);
CREATE TABLE IF NOT EXISTS testbed_executions (
  execution_id        TEXT PRIMARY KEY,
  workflow_definition INTEGER,
  workflow_name       TEXT,
  namespace           TEXT,
  parameter_values    TEXT,
  performance_metrics TEXT,
  status              TEXT NOT NULL,
  start_time          TEXT NOT NULL,
  end_time            TEXT,
  executed_by         TEXT
);
CREATE TABLE IF NOT EXISTS testbed_definitions (
  id               INTEGER PRIMARY KEY,
  workflow_name    TEXT NOT NULL,
  version          TEXT NOT NULL,
  workflow_type    TEXT,
  definition       TEXT,
  parameter_values TEXT,
  created_by       TEXT,
  created_at       TEXT,
  updated_at       TEXT,
  UNIQUE (workflow_name, version)
);
CREATE TABLE IF NOT EXISTS testbed_state_events (
  event_id   INTEGER PRIMARY KEY,
  timestamp  TEXT NOT NULL,
  run_number INTEGER,
  event_type TEXT NOT NULL,
  state      TEXT,
  substate   TEXT,
  event_data TEXT
);
CREATE TABLE IF NOT EXISTS testbed_subscribers (
  id              INTEGER PRIMARY KEY,
  subscriber_name TEXT NOT NULL UNIQUE,
  description     TEXT,
  is_active       INTEGER,
  fraction        REAL,
  created_at      TEXT,
  updated_at      TEXT
);
CREATE TABLE IF NOT EXISTS testbed_namespaces (
  name        TEXT PRIMARY KEY,
  owner       TEXT,
  description TEXT,
  created_at  TEXT,
  updated_at  TEXT
);
`;

export const TESTBED_INDEXES = [
  'CREATE INDEX IF NOT EXISTS testbed_stf_files_run ON testbed_stf_files (run_number);',
  'CREATE INDEX IF NOT EXISTS testbed_fastmon_files_stf ON testbed_fastmon_files (stf_filename);',
  'CREATE INDEX IF NOT EXISTS testbed_tf_slices_run ON testbed_tf_slices (run_number, slice_id);',
  'CREATE INDEX IF NOT EXISTS testbed_tf_slices_file ON testbed_tf_slices (tf_filename);',
  'CREATE INDEX IF NOT EXISTS testbed_state_events_run ON testbed_state_events (run_number, event_id);',
];

/**
 * FROM clauses that read derived and reported rows together, with the columns the lists' row shapes read. A
 * record written through REST hides the derived row with the same key.
 */
export const TESTBED_FROM = {
  executions: `(SELECT e.execution_id, e.workflow_name, e.namespace, e.parameter_values, e.performance_metrics, e.status,
      e.start_time, e.end_time, e.executed_by, e.machine_hash, e.reason, e.stop_requested_at, NULL AS workflow_definition,
      (SELECT group_concat(run_number) FROM (SELECT run_number FROM runs WHERE runs.execution_id = e.execution_id ORDER BY run_number)) AS run_numbers
    FROM workflow_executions e WHERE e.execution_id NOT IN (SELECT execution_id FROM testbed_executions)
    UNION ALL
    SELECT t.execution_id, t.workflow_name, t.namespace, t.parameter_values, t.performance_metrics, t.status,
      t.start_time, t.end_time, t.executed_by, NULL, NULL, NULL, t.workflow_definition,
      (SELECT group_concat(run_number) FROM (SELECT run_number FROM testbed_run_states s WHERE s.execution_id = t.execution_id ORDER BY run_number))
    FROM testbed_executions t)`,
  runs: `(SELECT r.run_number, r.execution_id, r.namespace, r.start_time, r.end_time, r.run_conditions, r.total_stf_files,
      r.dataset, r.allocated_at, NULL AS run_pk, s.phase, s.finished, s.stf_files AS stf_file_count
    FROM runs r LEFT JOIN run_states s USING (run_number) WHERE r.run_number NOT IN (SELECT run_number FROM testbed_runs)
    UNION ALL
    SELECT t.run_number, coalesce(rs.execution_id, r.execution_id), coalesce(rs.namespace, r.namespace), t.start_time,
      t.end_time, t.run_conditions, r.total_stf_files, r.dataset, r.allocated_at, t.run_pk, coalesce(rs.phase, s.phase),
      s.finished, (SELECT count(*) FROM testbed_stf_files f WHERE f.run_number = t.run_number)
    FROM testbed_runs t LEFT JOIN runs r USING (run_number) LEFT JOIN run_states s USING (run_number)
      LEFT JOIN testbed_run_states rs USING (run_number))`,
  runStates: `(SELECT run_number, phase, state, substate, target_worker_count, active_worker_count, stf_samples_received,
      slices_created, slices_queued, slices_processing, slices_completed, slices_failed, slices_retried, stf_files,
      total_stf_files, refusals, finished, finished_at, state_changed_at, updated_at, execution_id, namespace, metadata,
      'log' AS source
    FROM run_states WHERE run_number NOT IN (SELECT run_number FROM testbed_run_states)
    UNION ALL
    SELECT t.run_number, t.phase, t.state, t.substate, t.target_worker_count, t.active_worker_count, t.stf_samples_received,
      t.slices_created, t.slices_queued, t.slices_processing, t.slices_completed, t.slices_failed, NULL, NULL, NULL, NULL,
      s.finished, s.finished_at, t.state_changed_at, t.updated_at, t.execution_id, t.namespace, t.metadata, 'reported'
    FROM testbed_run_states t LEFT JOIN run_states s USING (run_number))`,
  stfFiles: `(SELECT file_id, stf_filename, run_number, execution_id, namespace, sequence, machine_state, daq_state,
      daq_substate, file_size_bytes, checksum, status, tf_file_count, created_at, updated_at, metadata, NULL AS run_pk,
      NULL AS workflow_id, NULL AS workflow_status, NULL AS tf_count
    FROM stf_files WHERE stf_filename NOT IN (SELECT stf_filename FROM testbed_stf_files)
    UNION ALL
    SELECT t.file_id, t.stf_filename, t.run_number, rs.execution_id, coalesce(rs.namespace, t.namespace), t.sequence,
      t.machine_state, t.daq_state, t.daq_substate, t.file_size_bytes, t.checksum, t.status,
      (SELECT count(*) FROM testbed_fastmon_files f WHERE f.stf_filename = t.stf_filename), t.created_at, t.updated_at,
      t.metadata, t.run_pk, t.workflow_id, t.workflow_status, t.tf_count
    FROM testbed_stf_files t LEFT JOIN testbed_run_states rs USING (run_number))`,
  fastmonFiles: `(SELECT tf_file_id, tf_filename, stf_filename, run_number, execution_id, namespace, tf_first, tf_last,
      tf_count, file_size_bytes, checksum, status, slice_count, created_at, updated_at, metadata
    FROM fastmon_files WHERE tf_filename NOT IN (SELECT tf_filename FROM testbed_fastmon_files)
    UNION ALL
    SELECT t.tf_file_id, t.tf_filename, t.stf_filename, t.run_number, rs.execution_id, coalesce(rs.namespace, t.namespace),
      t.tf_first, t.tf_last, t.tf_count, t.file_size_bytes, t.checksum, t.status,
      (SELECT count(*) FROM testbed_tf_slices s WHERE s.fastmon_file = t.tf_filename), t.created_at, t.updated_at, t.metadata
    FROM testbed_fastmon_files t LEFT JOIN testbed_run_states rs USING (run_number))`,
  slices: `(SELECT id, tf_filename, fastmon_file, stf_filename, run_number, execution_id, namespace, slice_id, tf_first,
      tf_last, tf_count, status, attempt, retries, max_retries, assigned_worker, assigned_at, lease_deadline,
      completed_at, last_error, refusals, last_refusal, created_at, updated_at, metadata
    FROM tf_slices WHERE tf_filename NOT IN (SELECT tf_filename FROM testbed_tf_slices)
    UNION ALL
    SELECT id, tf_filename, fastmon_file, stf_filename, run_number, execution_id, namespace, slice_id, tf_first, tf_last,
      tf_count, status, retries + 1, retries, NULL, assigned_worker, assigned_at, NULL, completed_at, NULL, 0, NULL,
      created_at, updated_at, metadata
    FROM testbed_tf_slices)`,
} as const;

const json = (v: unknown): string | null => (v === undefined || v === null ? null : JSON.stringify(v));
const val = (v: unknown): string | number | null =>
  typeof v === 'string' || typeof v === 'number' ? v : typeof v === 'boolean' ? (v ? 1 : 0) : null;
const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** A write that stores one whole record (every event carries the record as it stands after the write). */
const upsert = (table: string, columns: readonly string[]) => {
  const sql = `INSERT OR REPLACE INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`;
  return (params: (string | number | null)[]): readonly Write[] => [{ sql, params }];
};
const runs = upsert('testbed_runs', ['run_number', 'run_pk', 'start_time', 'end_time', 'run_conditions']);
const runStates = upsert('testbed_run_states', [
  'run_number',
  'phase',
  'state',
  'substate',
  'target_worker_count',
  'active_worker_count',
  'stf_samples_received',
  'slices_created',
  'slices_queued',
  'slices_processing',
  'slices_completed',
  'slices_failed',
  'state_changed_at',
  'updated_at',
  'execution_id',
  'namespace',
  'metadata',
]);
const stfFiles = upsert('testbed_stf_files', [
  'file_id',
  'stf_filename',
  'run_pk',
  'run_number',
  'sequence',
  'machine_state',
  'daq_state',
  'daq_substate',
  'workflow_id',
  'workflow_status',
  'tf_count',
  'file_size_bytes',
  'checksum',
  'status',
  'created_at',
  'updated_at',
  'namespace',
  'metadata',
]);
const samples = upsert('testbed_fastmon_files', [
  'tf_file_id',
  'tf_filename',
  'stf_filename',
  'run_number',
  'tf_first',
  'tf_last',
  'tf_count',
  'file_size_bytes',
  'checksum',
  'status',
  'created_at',
  'updated_at',
  'namespace',
  'metadata',
]);
const slices = upsert('testbed_tf_slices', [
  'id',
  'tf_filename',
  'fastmon_file',
  'stf_filename',
  'run_number',
  'execution_id',
  'namespace',
  'slice_id',
  'tf_first',
  'tf_last',
  'tf_count',
  'status',
  'retries',
  'assigned_worker',
  'assigned_at',
  'completed_at',
  'created_at',
  'updated_at',
  'metadata',
]);
const executions = upsert('testbed_executions', [
  'execution_id',
  'workflow_definition',
  'workflow_name',
  'namespace',
  'parameter_values',
  'performance_metrics',
  'status',
  'start_time',
  'end_time',
  'executed_by',
]);
const definitions = upsert('testbed_definitions', [
  'id',
  'workflow_name',
  'version',
  'workflow_type',
  'definition',
  'parameter_values',
  'created_by',
  'created_at',
  'updated_at',
]);
const stateEvents = upsert('testbed_state_events', [
  'event_id',
  'timestamp',
  'run_number',
  'event_type',
  'state',
  'substate',
  'event_data',
]);
const subscribers = upsert('testbed_subscribers', [
  'id',
  'subscriber_name',
  'description',
  'is_active',
  'fraction',
  'created_at',
  'updated_at',
]);
const namespaces = upsert('testbed_namespaces', ['name', 'owner', 'description', 'created_at', 'updated_at']);

export const testbedProjection: Projection = {
  name: 'testbed',
  state: {},
  evolve(e: ProjectedEvent) {
    if (!isTestbedEventType(e.type)) return NO_WRITES;
    const d = isRecord(e.data) ? e.data : {};
    const r = isRecord(d.record) ? d.record : undefined;
    if (!r) return NO_WRITES;
    const ns = text(e.metadata.namespace);
    const meta = isRecord(r.metadata) ? r.metadata : {};
    const executionId = text(meta.execution_id);
    switch (e.type) {
      case 'RunRegistered':
      case 'RunUpdated':
        return runs([val(r.run_number), val(r.run_id), text(r.start_time), text(r.end_time), json(r.run_conditions)]);
      case 'RunStateReported':
      case 'RunStateUpdateReported':
        return runStates([
          val(r.run_number),
          text(r.phase) ?? '',
          text(r.state) ?? '',
          text(r.substate),
          val(r.target_worker_count),
          val(r.active_worker_count),
          val(r.stf_samples_received),
          val(r.slices_created),
          val(r.slices_queued),
          val(r.slices_processing),
          val(r.slices_completed),
          val(r.slices_failed),
          text(r.state_changed_at),
          text(r.updated_at),
          executionId,
          ns,
          json(r.metadata),
        ]);
      case 'StfFileRegistered':
      case 'StfFileUpdated':
        return stfFiles([
          val(r.file_id),
          val(r.stf_filename),
          val(r.run),
          val(r.run_number),
          val(meta.sequence),
          text(r.machine_state),
          text(r.daq_state),
          text(r.daq_substate),
          text(r.workflow_id),
          text(r.workflow_status),
          val(r.tf_count),
          val(r.file_size_bytes),
          text(r.checksum),
          text(r.status) ?? 'registered',
          text(r.created_at) ?? e.time,
          text(r.updated_at) ?? e.time,
          ns,
          json(r.metadata),
        ]);
      case 'TfSampleRegistered':
        return samples([
          val(r.tf_file_id),
          val(r.tf_filename),
          val(r.stf_file),
          val(d.run_number),
          val(r.tf_first),
          val(r.tf_last),
          val(r.tf_count),
          val(r.file_size_bytes),
          text(r.checksum),
          text(r.status) ?? 'registered',
          text(r.created_at) ?? e.time,
          text(r.updated_at) ?? e.time,
          ns,
          json(r.metadata),
        ]);
      case 'TfSliceRegistered':
      case 'TfSliceStatusReported':
        return slices([
          e.type === 'TfSliceRegistered' ? Number(e.position) : val(r.id),
          text(r.tf_filename) ?? '',
          text(r.fastmon_file) ?? '',
          text(r.stf_filename),
          val(r.run_number),
          executionId,
          ns,
          val(r.slice_id),
          val(r.tf_first),
          val(r.tf_last),
          val(r.tf_count),
          text(r.status) ?? 'queued',
          val(r.retries) ?? 0,
          text(r.assigned_worker),
          text(r.assigned_at),
          text(r.completed_at),
          text(r.created_at) ?? e.time,
          text(r.updated_at) ?? e.time,
          json(r.metadata),
        ]);
      case 'WorkflowExecutionRegistered':
      case 'WorkflowExecutionUpdated':
        return executions([
          val(r.execution_id),
          val(r.workflow_definition),
          text(r.workflow_name),
          text(r.namespace),
          json(r.parameter_values),
          json(r.performance_metrics),
          text(r.status) ?? 'pending',
          text(r.start_time) ?? e.time,
          text(r.end_time),
          text(r.executed_by),
        ]);
      case 'WorkflowDefinitionRegistered':
        return definitions([
          val(r.id),
          text(r.workflow_name) ?? '',
          text(r.version) ?? '',
          text(r.workflow_type),
          text(r.definition),
          json(r.parameter_values),
          text(r.created_by),
          text(r.created_at),
          text(r.updated_at),
        ]);
      case 'SystemStateEventRecorded':
        return stateEvents([
          Number(e.position),
          text(r.timestamp) ?? e.time,
          val(r.run_number),
          text(r.event_type) ?? '',
          text(r.state),
          text(r.substate),
          json(r.event_data),
        ]);
      case 'SubscriberRegistered':
        return subscribers([
          val(r.id),
          text(r.subscriber_name) ?? '',
          text(r.description),
          val(r.is_active),
          val(r.fraction),
          text(r.created_at),
          text(r.updated_at),
        ]);
      case 'NamespaceEnsured':
        return namespaces([text(r.name), text(r.owner), text(r.description), text(r.created_at), text(r.updated_at)]);
      default:
        return NO_WRITES;
    }
  },
};

// ---- reads of the records only the testbed's API writes -------------------------------------------

type Raw = Record<string, unknown>;

const parse = (v: unknown): unknown => {
  if (typeof v !== 'string') return v ?? null;
  try {
    return JSON.parse(v) as unknown;
  } catch {
    return v;
  }
};

/** The rows of one of these tables matching `filters` (column = value), oldest first, JSON columns parsed. */
function listRows(
  db: ViewsDb,
  table: 'testbed_definitions' | 'testbed_state_events',
  filters: Record<string, string | number | undefined>,
  order: string,
  jsonColumn: string,
): Raw[] {
  const where: string[] = [];
  const params: (string | number)[] = [];
  for (const [column, value] of Object.entries(filters)) {
    if (value === undefined) continue;
    where.push(`${column} = ?`);
    params.push(value);
  }
  const sql = `SELECT * FROM ${table}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY ${order}`;
  return db
    .prepare<Raw>(sql)
    .all(params)
    .map((r) => ({ ...r, [jsonColumn]: parse(r[jsonColumn]) }));
}

/** `GET /api/workflow-definitions/?workflow_name=&version=` (a plain list, as the testbed's). */
export function listDefinitions(db: ViewsDb, filters: { workflow_name?: string; version?: string }): Raw[] {
  return listRows(
    db,
    'testbed_definitions',
    { workflow_name: filters.workflow_name, version: filters.version },
    'id',
    'parameter_values',
  );
}

/** `GET /api/system-state-events/?run_number=&event_type=&state=`. */
export function listStateEvents(
  db: ViewsDb,
  filters: { run_number?: number; event_type?: string; state?: string },
): Raw[] {
  return listRows(
    db,
    'testbed_state_events',
    { run_number: filters.run_number, event_type: filters.event_type, state: filters.state },
    'event_id',
    'event_data',
  );
}

/** The RunState fields an agent reports that swf-es also derives from the messages. */
const COMPARED = [
  'phase',
  'substate',
  'active_worker_count',
  'stf_samples_received',
  'slices_created',
  'slices_queued',
  'slices_processing',
  'slices_completed',
  'slices_failed',
] as const;

/**
 * Where what an agent reported disagrees with what the log implies: both are kept, and the monitor shows the
 * fields that differ (the reported RunState of a run whose messages swf-es also folded).
 */
export function runStateDifferences(
  reported: Record<string, unknown>,
  derived: Record<string, unknown>,
): { field: string; reported: unknown; derived: unknown }[] {
  const out: { field: string; reported: unknown; derived: unknown }[] = [];
  for (const f of COMPARED) {
    const a = reported[f] ?? null;
    const b = derived[f] ?? null;
    if (a !== b) out.push({ field: f, reported: a, derived: b });
  }
  return out;
}
