/**
 * The read models' tables. Names and columns follow the testbed monitor's models (testbed-facts §3), with what the
 * testbed lacks added (execution_id and namespace everywhere, a slice's own file name, attempts, leases).
 * Times are the workflow clock's ISO-8601 UTC strings from the events, never the projector's clock, so a rebuild
 * gives the same rows. JSON columns hold JSON text.
 *
 * Bump `VIEWS_VERSION` when a table or a fold rule changes: views of another version are rebuilt when opened.
 */
import { TESTBED_DDL, TESTBED_INDEXES, TESTBED_TABLES } from './testbedRecords.js';

export const VIEWS_VERSION = 6;

/** Tables owned by each projection (a projection's rebuild drops and recreates exactly these). */
export const PROJECTION_TABLES = {
  workflow: [
    'workflow_executions',
    'runs',
    'run_states',
    'stf_files',
    'fastmon_files',
    'tf_slices',
    'workflow_problems',
    'run_series',
    'run_series_cursor',
    'run_marks',
  ],
  messages: ['workflow_messages'],
  agents: ['systemagents', 'log_clock'],
  logs: ['applog'],
  testbed: TESTBED_TABLES,
} as const;

export type ProjectionName = keyof typeof PROJECTION_TABLES;
export const PROJECTION_NAMES = Object.keys(PROJECTION_TABLES) as ProjectionName[];

export const META_DDL = `
CREATE TABLE IF NOT EXISTS projection_checkpoints (
  name       TEXT PRIMARY KEY,
  position   INTEGER NOT NULL,
  -- id of the event at 'position': tells whether these views still belong to the log they are opened with
  event_id   TEXT,
  version    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS views_meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
`;

export const TABLE_DDL: Record<ProjectionName, string> = {
  testbed: TESTBED_DDL,
  workflow: `
CREATE TABLE IF NOT EXISTS workflow_executions (
  execution_id        TEXT PRIMARY KEY,
  workflow_name       TEXT NOT NULL,
  namespace           TEXT NOT NULL,
  parameter_values    TEXT NOT NULL,
  performance_metrics TEXT,
  status              TEXT NOT NULL,
  start_time          TEXT NOT NULL,
  end_time            TEXT,
  executed_by         TEXT NOT NULL,
  machine_hash        TEXT,
  machine_definitions TEXT,
  reason              TEXT,
  stop_requested_at   TEXT,
  position            INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS runs (
  run_number      INTEGER PRIMARY KEY,
  execution_id    TEXT,
  namespace       TEXT,
  start_time      TEXT,
  end_time        TEXT,
  run_conditions  TEXT,
  total_stf_files INTEGER,
  dataset         TEXT,
  allocated_at    TEXT
);

CREATE TABLE IF NOT EXISTS run_states (
  run_number           INTEGER PRIMARY KEY,
  phase                TEXT NOT NULL,
  state                TEXT NOT NULL,
  substate             TEXT,
  target_worker_count  INTEGER NOT NULL,
  active_worker_count  INTEGER NOT NULL,
  stf_samples_received INTEGER NOT NULL,
  slices_created       INTEGER NOT NULL,
  slices_queued        INTEGER NOT NULL,
  slices_processing    INTEGER NOT NULL,
  slices_completed     INTEGER NOT NULL,
  slices_failed        INTEGER NOT NULL,
  slices_retried       INTEGER NOT NULL,
  stf_files            INTEGER NOT NULL,
  total_stf_files      INTEGER,
  refusals             INTEGER NOT NULL,
  finished             INTEGER NOT NULL,
  finished_at          TEXT,
  state_changed_at     TEXT NOT NULL,
  updated_at           TEXT NOT NULL,
  execution_id         TEXT,
  namespace            TEXT,
  metadata             TEXT,
  -- the run machine's snapshot (value and context), to resume the fold
  snapshot             TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS stf_files (
  file_id          TEXT PRIMARY KEY,
  stf_filename     TEXT NOT NULL UNIQUE,
  run_number       INTEGER NOT NULL,
  execution_id     TEXT,
  namespace        TEXT,
  sequence         INTEGER,
  machine_state    TEXT,
  daq_state        TEXT,
  daq_substate     TEXT,
  file_size_bytes  INTEGER,
  checksum         TEXT,
  status           TEXT NOT NULL,
  tf_file_count    INTEGER NOT NULL DEFAULT 0,
  created_at       TEXT NOT NULL,
  updated_at       TEXT NOT NULL,
  metadata         TEXT
);

CREATE TABLE IF NOT EXISTS fastmon_files (
  tf_file_id      TEXT PRIMARY KEY,
  tf_filename     TEXT NOT NULL UNIQUE,
  stf_filename    TEXT NOT NULL,
  run_number      INTEGER NOT NULL,
  execution_id    TEXT,
  namespace       TEXT,
  tf_first        INTEGER,
  tf_last         INTEGER,
  tf_count        INTEGER,
  file_size_bytes INTEGER,
  checksum        TEXT,
  status          TEXT NOT NULL,
  slice_count     INTEGER NOT NULL DEFAULT 0,
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL,
  metadata        TEXT
);

CREATE TABLE IF NOT EXISTS tf_slices (
  id              INTEGER PRIMARY KEY,
  tf_filename     TEXT NOT NULL UNIQUE,
  fastmon_file    TEXT NOT NULL,
  stf_filename    TEXT NOT NULL,
  run_number      INTEGER NOT NULL,
  execution_id    TEXT,
  namespace       TEXT,
  slice_id        INTEGER NOT NULL,
  tf_first        INTEGER NOT NULL,
  tf_last         INTEGER NOT NULL,
  tf_count        INTEGER NOT NULL,
  status          TEXT NOT NULL,
  attempt         INTEGER NOT NULL,
  retries         INTEGER NOT NULL,
  max_retries     INTEGER NOT NULL,
  assigned_worker TEXT,
  assigned_at     TEXT,
  lease_deadline  TEXT,
  completed_at    TEXT,
  last_error      TEXT,
  refusals        INTEGER NOT NULL,
  last_refusal    TEXT,
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL,
  metadata        TEXT,
  -- the log positions of the events that name the slice, comma-separated in log order (its event history)
  event_positions TEXT NOT NULL DEFAULT ''
);

-- a run's RunState at the end of each second of the workflow clock that changed it (workflow/series.ts)
CREATE TABLE IF NOT EXISTS run_series (
  run_number  INTEGER NOT NULL,
  t           INTEGER NOT NULL,
  completed   INTEGER NOT NULL,
  failed      INTEGER NOT NULL,
  retried     INTEGER NOT NULL,
  queued      INTEGER NOT NULL,
  processing  INTEGER NOT NULL,
  workers     INTEGER NOT NULL,
  stfs        INTEGER NOT NULL,
  samples     INTEGER NOT NULL,
  PRIMARY KEY (run_number, t)
) WITHOUT ROWID;

-- the open second of each run's series, and its slice latency histogram
CREATE TABLE IF NOT EXISTS run_series_cursor (
  run_number  INTEGER PRIMARY KEY,
  first       INTEGER NOT NULL,
  t           INTEGER NOT NULL,
  completed   INTEGER NOT NULL,
  failed      INTEGER NOT NULL,
  retried     INTEGER NOT NULL,
  queued      INTEGER NOT NULL,
  processing  INTEGER NOT NULL,
  workers     INTEGER NOT NULL,
  stfs        INTEGER NOT NULL,
  samples     INTEGER NOT NULL,
  phase       TEXT NOT NULL,
  finished    INTEGER NOT NULL,
  latency     TEXT NOT NULL
);

-- where a run's phase changed (and where it finished): the time axis's marks
CREATE TABLE IF NOT EXISTS run_marks (
  position    INTEGER NOT NULL,
  run_number  INTEGER NOT NULL,
  time        TEXT NOT NULL,
  phase       TEXT NOT NULL,
  PRIMARY KEY (position, phase)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS workflow_problems (
  position     INTEGER PRIMARY KEY,
  type         TEXT NOT NULL,
  execution_id TEXT,
  run_number   INTEGER,
  namespace    TEXT,
  agent        TEXT,
  reason       TEXT NOT NULL,
  created_at   TEXT NOT NULL,
  data         TEXT
);
`,
  messages: `
CREATE TABLE IF NOT EXISTS workflow_messages (
  position        INTEGER PRIMARY KEY,
  -- not indexed: a random UUID index halves the projection's speed, and nothing looks messages up by id
  message_id      TEXT NOT NULL,
  message_type    TEXT NOT NULL,
  sender_agent    TEXT,
  namespace       TEXT,
  execution_id    TEXT,
  run_id          TEXT,
  queue_name      TEXT,
  correlation_id  TEXT,
  causation_id    TEXT,
  stream          TEXT NOT NULL,
  sent_at         TEXT NOT NULL
  -- no body: the log holds it, and readers fetch it by position (bodies.ts). Copying every body here (100+ MB
  -- for a 1,000-STF run) made the projection half as fast.
);
`,
  agents: `
CREATE TABLE IF NOT EXISTS systemagents (
  instance_name     TEXT PRIMARY KEY,
  agent_type        TEXT NOT NULL,
  description       TEXT,
  status            TEXT NOT NULL,
  operational_state TEXT NOT NULL,
  namespace         TEXT,
  last_heartbeat    TEXT NOT NULL,
  -- when the store recorded the last heartbeat (its wall clock): liveness is judged by it, not by the workflow clock
  last_seen         TEXT NOT NULL,
  pid               INTEGER,
  hostname          TEXT,
  execution_id      TEXT,
  run_id            TEXT,
  heartbeat_count   INTEGER NOT NULL,
  messages_sent     INTEGER NOT NULL DEFAULT 0,
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL
);
-- the latest workflow-clock time in the log: staleness and default time windows are judged against it
CREATE TABLE IF NOT EXISTS log_clock (
  id     INTEGER PRIMARY KEY CHECK (id = 1),
  latest TEXT NOT NULL
);
`,
  logs: `
CREATE TABLE IF NOT EXISTS applog (
  id            INTEGER PRIMARY KEY,
  position      INTEGER NOT NULL UNIQUE,
  app_name      TEXT NOT NULL,
  instance_name TEXT NOT NULL,
  timestamp     TEXT NOT NULL,
  level         INTEGER NOT NULL,
  levelname     TEXT NOT NULL,
  message       TEXT NOT NULL,
  module        TEXT,
  funcname      TEXT,
  lineno        INTEGER,
  process       INTEGER,
  thread        INTEGER,
  namespace     TEXT,
  execution_id  TEXT,
  run_id        TEXT,
  extra_data    TEXT
);
`,
};

/**
 * Secondary indexes, apart from the tables: a fold from the start of a long log creates them at the end (a sorted
 * build is several times faster than keeping them up to date row by row).
 */
export const INDEX_DDL: Record<ProjectionName, string[]> = {
  workflow: [
    'CREATE INDEX IF NOT EXISTS workflow_executions_start ON workflow_executions (start_time);',
    'CREATE INDEX IF NOT EXISTS runs_execution ON runs (execution_id);',
    'CREATE INDEX IF NOT EXISTS stf_files_run ON stf_files (run_number, sequence);',
    'CREATE INDEX IF NOT EXISTS stf_files_created ON stf_files (created_at);',
    'CREATE INDEX IF NOT EXISTS fastmon_files_run ON fastmon_files (run_number);',
    'CREATE INDEX IF NOT EXISTS fastmon_files_stf ON fastmon_files (stf_filename);',
    'CREATE INDEX IF NOT EXISTS tf_slices_run_status ON tf_slices (run_number, status);',
    'CREATE INDEX IF NOT EXISTS tf_slices_sample ON tf_slices (fastmon_file, slice_id);',
    'CREATE INDEX IF NOT EXISTS workflow_problems_execution ON workflow_problems (execution_id);',
    'CREATE INDEX IF NOT EXISTS run_marks_run ON run_marks (run_number, position);',
  ],
  messages: [
    'CREATE INDEX IF NOT EXISTS workflow_messages_execution ON workflow_messages (execution_id, position);',
    'CREATE INDEX IF NOT EXISTS workflow_messages_type ON workflow_messages (message_type, position);',
    'CREATE INDEX IF NOT EXISTS workflow_messages_sent ON workflow_messages (sent_at);',
  ],
  logs: [
    'CREATE INDEX IF NOT EXISTS applog_timestamp ON applog (timestamp);',
    'CREATE INDEX IF NOT EXISTS applog_execution ON applog (execution_id, timestamp);',
    'CREATE INDEX IF NOT EXISTS applog_instance ON applog (instance_name, timestamp);',
  ],
  agents: [],
  testbed: TESTBED_INDEXES,
};

/** The name of each index in `INDEX_DDL`. */
export const indexNameOf = (ddl: string): string => /INDEX IF NOT EXISTS (\w+)/.exec(ddl)?.[1] ?? '';
