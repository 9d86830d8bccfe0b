/**
 * The MCP server: the testbed monitor's tools (testbed-facts §5.2, unprefixed names), over the same queries as
 * REST. `swf mcp` serves it on stdio, the monitor at `/mcp` (streamable HTTP, stateless JSON). Every tool waits for
 * the views to catch up with the log, validates its arguments (a bad one is a tool error saying what was wrong)
 * and returns JSON. Lists return `{ items, total_count, has_more }`; without a run or execution filter they look at
 * a default time window before the log's latest time.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { EventStore } from '../eventStore/eventStore.js';
import { ValidationError } from '../errors.js';
import { withBodies } from '../projections/bodies.js';
import type { ViewsDb } from '../projections/db.js';
import { convertArguments, type FilterSpec, type FilterValues, zodShape } from '../projections/filters.js';
import {
  type McpAccess,
  type McpActions,
  OPERATOR_TOOL_NAMES,
  type Register,
  registerOperatorTools,
} from './mcpOperator.js';
import {
  filtersOf,
  getExecution,
  getRunState,
  getSlice,
  list,
  type ListName,
  logClock,
  type Row,
  workflowMonitor,
} from '../projections/queries.js';

export interface McpViews {
  db: ViewsDb;
  /** The log, for message bodies. */
  store: EventStore;
  /** Catches the views up with the log (before each answer). */
  ready(): Promise<unknown>;
  /** The monitor's base URL, for links in answers. */
  baseUrl?: string;
  /** What the acting tools call; without it they answer that this server cannot act. */
  actions?: McpActions;
  /** Whether this caller holds the write token. Default: refused. */
  access?: McpAccess;
}

const HOUR = 3_600_000;

/**
 * The server's instructions, with examples taken from the store (its newest execution and run) so that an assistant
 * copying them finds something; before any run, the shipped workflow's names.
 */
export function instructionsFor(db: ViewsDb): string {
  const newest = list(db, 'executions', { page: { limit: 1 } }).rows[0];
  const executionId = typeof newest?.execution_id === 'string' ? newest.execution_id : 'fast_processing-swf-0001';
  const workflow = typeof newest?.workflow_name === 'string' ? newest.workflow_name : 'fast_processing';
  const runs = Array.isArray(newest?.run_numbers) ? (newest.run_numbers as number[]) : [];
  const run = runs[0] ?? 100010;
  const stf = `swf.${run}.000001.stf`;
  const example = newest ? 'the newest execution in this store' : 'the form ids take; this store has no execution yet';
  return `swf-es monitor: the ePIC streaming workflow testbed's fast processing workflow, as an event log.
An execution of workflow "${workflow}" (id "<workflow>-<user>-<NNNN>", e.g. "${executionId}", ${example}) allocates a
run number (${run}; numbers start at 100010). The DAQ announces STF files (${stf}); FastMon cuts TF samples
(${stf.replace(/\.stf$/, '_tf_001.tf')}) from them; fast processing cuts each sample into TF slices
(${stf.replace(/\.stf$/, '_tf_001_slice_000.tf')}) that PanDA workers process (queued → processing → completed | failed,
failed attempts retried up to max_slice_retries). RunState holds a run's phase (imminent → physics ↔ standby →
completed) and slice counters; phase completed means data taking ended: the run is finished once every slice is final.
Start from get_system_state (agents healthy/stale, executions running, runs in progress), list_workflow_executions or
get_workflow_monitor(execution_id="${executionId}"); get_run_state(run_number=${run}); list_messages(execution_id)
shows every message of an execution. start_workflow, stop_workflow and what_if_replay act: they need the REST API's
write token. Every tool also answers to the testbed's name, prefixed swf_ (swf_get_workflow_monitor, ...).`;
}

interface ListTool {
  name: string;
  title: string;
  description: string;
  list: ListName;
  /** Largest page (and the default). */
  max: number;
  /** Default look-back window before the log's latest time, unless one of `lifts` is given. */
  windowMs?: number;
  lifts?: readonly string[];
  /** Tool argument name → list filter name (the testbed's names where they differ). */
  rename?: Record<string, string>;
  defaults?: (args: FilterValues) => FilterValues;
  /** The items need the messages' bodies from the log. */
  bodies?: boolean;
  item?: (r: Row) => Row;
}

const payloadSummary = (content: unknown): string => {
  const s = JSON.stringify(content);
  return s.length > 200 ? `${s.slice(0, 197)}...` : s;
};

const LIST_TOOLS: ListTool[] = [
  {
    name: 'list_workflow_executions',
    title: 'Workflow executions',
    description:
      'Workflow executions, newest first: execution_id, workflow_name, namespace, status (running, completed, failed, terminated), executed_by, start/end time, parameter_values (the full configuration), run_numbers. Default: those started in the 24 h before the latest event, unless currently_running or execution_id is given.',
    list: 'executions',
    max: 100,
    windowMs: 24 * HOUR,
    lifts: ['currently_running', 'execution_id'],
  },
  {
    name: 'list_runs',
    title: 'Runs',
    description:
      'Runs, newest first: run_number, execution_id, start/end time, duration_seconds, stf_file_count, phase, finished. Default: runs started in the 7 days before the latest event, unless run_number or execution_id is given.',
    list: 'runs',
    max: 100,
    windowMs: 7 * 24 * HOUR,
    lifts: ['run_number', 'execution_id'],
  },
  {
    name: 'list_messages',
    title: 'Workflow messages',
    description:
      'Workflow messages (run_imminent, start_run, stf_gen, pause_run, resume_run, end_run, stf_ready, tf_file_registered, slice, slice_result, run_imminent_worker), newest first: message_type, sender_agent, namespace, sent_at, execution_id, run_id, position (in the log), payload_summary. Every message carries its execution_id, so execution_id gives a whole run. Default: the last hour before the latest event, unless execution_id or run_number is given.',
    list: 'messages',
    max: 200,
    windowMs: HOUR,
    lifts: ['execution_id', 'run_number'],
    bodies: true,
    item: (r) => ({
      message_type: r.message_type,
      sender_agent: r.sender_agent,
      namespace: r.namespace,
      sent_at: r.sent_at,
      execution_id: r.execution_id,
      run_id: r.run_id,
      position: r.position,
      payload_summary: payloadSummary(r.message_content),
    }),
  },
  {
    name: 'list_stf_files',
    title: 'STF files',
    description:
      'Super Time Frame files, newest first: file_id, stf_filename, run_number, sequence, status (registered when announced, processed when the data agent sent stf_ready), machine_state, file_size_bytes, checksum, created_at, tf_file_count (TF samples taken from it). Default: the 24 h before the latest event, unless run_number, execution_id or stf_filename is given.',
    list: 'stfFiles',
    max: 100,
    windowMs: 24 * HOUR,
    lifts: ['run_number', 'execution_id', 'stf_filename'],
  },
  {
    name: 'list_tf_slices',
    title: 'TF slices',
    description:
      "TF slices, newest first: id, tf_filename (the slice's own file), fastmon_file (its TF sample), stf_filename, run_number, slice_id, tf_first, tf_last, tf_count, status (queued, processing, completed, failed = failed for good), retries, attempt, assigned_worker, created_at, completed_at. Default: the 24 h before the latest event, unless run_number, execution_id, stf_filename, fastmon_file or tf_filename is given.",
    list: 'slices',
    max: 200,
    windowMs: 24 * HOUR,
    lifts: ['run_number', 'execution_id', 'stf_filename', 'fastmon_file', 'tf_filename', 'id'],
  },
  {
    name: 'list_logs',
    title: 'Agent logs',
    description:
      'Agent log entries, newest first: id, timestamp, app_name, instance_name, level, levelname, message, extra_data (execution_id, run_id). level is a minimum (WARNING gives warnings and errors). Default: the 24 h before the latest event, unless execution_id or run_number is given.',
    list: 'logs',
    max: 200,
    windowMs: 24 * HOUR,
    lifts: ['execution_id', 'run_number'],
  },
  {
    name: 'list_agents',
    title: 'Agents',
    description:
      'Agents and their last heartbeat: instance_name, agent_type, status, operational_state (STARTING, READY, PROCESSING, EXITED), namespace, last_heartbeat, stale. An agent without a heartbeat recorded for 3 minutes of wall-clock time shows as EXITED. Default: only agents not EXITED; status "all" shows every one.',
    list: 'agents',
    max: 200,
    defaults: (a): FilterValues => (a.status === undefined && a.active === undefined ? { active: true } : {}),
  },
];

/** The time `ms` before the log's latest time, or undefined when the log has none. */
function windowStart(db: ViewsDb, ms: number): string | undefined {
  const latest = logClock(db);
  if (!latest) return undefined;
  return new Date(Date.parse(latest) - ms).toISOString();
}

function json(value: unknown): CallToolResult {
  return {
    content: [{ type: 'text', text: JSON.stringify(value) }],
    structuredContent: value as Record<string, unknown>,
  };
}

const pageShape = (max: number) => ({
  limit: z.number().int().min(1).max(max).optional().describe(`How many items to return (1-${max}, default ${max}).`),
  offset: z.number().int().min(0).optional().describe('Skip this many items (for the next page when has_more).'),
});

function toolSpecs(tool: ListTool): FilterSpec[] {
  const specs = filtersOf(tool.list).filter((s) => !(tool.name === 'list_agents' && s.name === 'active'));
  const rename = Object.entries(tool.rename ?? {});
  return specs.map((s) => {
    const hit = rename.find(([, to]) => to === s.name);
    return hit ? { ...s, name: hit[0] } : s;
  });
}

/** Built once: the monitor makes a server per HTTP request (stateless), and building schemas is the costly part. */
const LIST_TOOL_SCHEMAS = LIST_TOOLS.map((tool) => {
  const specs = toolSpecs(tool);
  return { tool, specs, inputSchema: z.strictObject({ ...zodShape(specs), ...pageShape(tool.max) }) };
});

const executionId = z
  .string()
  .min(1)
  .max(256)
  .describe('Workflow execution id, e.g. "fast_processing_default-swf-0001".');
const runNumber = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).describe('Run number, e.g. 100010.');
const EXECUTION_INPUT = z.strictObject({ execution_id: executionId });
const RUN_INPUT = z.strictObject({ run_number: runNumber });
const SLICE_INPUT = z.strictObject({
  tf_filename: z.string().min(1).max(256).optional().describe("The slice's own file name."),
  fastmon_file: z.string().min(1).max(256).optional().describe('The TF sample file name (with slice_id).'),
  slice_id: z.number().int().min(0).max(100_000).optional().describe('Slice number within the sample (0-based).'),
  id: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional().describe("The slice's row id."),
});

/** A new MCP server with every tool over `views` (one per connection or stateless request). */
export function createMcpServer(views: McpViews): McpServer {
  const server = new McpServer(
    { name: 'swf-es-monitor', version: '0.1.0' },
    { instructions: instructionsFor(views.db) },
  );
  // Every tool under our name and the testbed's (`swf_`-prefixed, testbed-facts §5.2), one handler.
  const register: Register = (name, config, handler) => {
    // the SDK's overloads do not follow a generic schema through; the shapes are the same
    const cb = handler as unknown as Parameters<McpServer['registerTool']>[2];
    server.registerTool(name, config, cb);
    server.registerTool(`swf_${name}`, { ...config, title: `${config.title} (testbed name)` }, cb);
  };
  const readOnly = { readOnlyHint: true, openWorldHint: false } as const;
  const link = (path: string): { monitor_url?: string } =>
    views.baseUrl ? { monitor_url: `${views.baseUrl}${path}` } : {};

  for (const { tool, specs, inputSchema } of LIST_TOOL_SCHEMAS) {
    register(
      tool.name,
      { title: tool.title, description: tool.description, inputSchema, annotations: readOnly },
      async (args: Record<string, unknown>) => {
        await views.ready();
        const given = convertArguments(args, specs);
        const filters: FilterValues = {};
        for (const [k, v] of Object.entries(given)) filters[tool.rename?.[k] ?? k] = v;
        Object.assign(filters, tool.defaults?.(filters) ?? {});
        if (
          tool.windowMs !== undefined &&
          filters.start_time === undefined &&
          !(tool.lifts ?? []).some((k) => filters[k] !== undefined)
        ) {
          const start = windowStart(views.db, tool.windowMs);
          if (start) filters.start_time = start;
        }
        const limit = typeof args.limit === 'number' ? args.limit : tool.max;
        const offset = typeof args.offset === 'number' ? args.offset : 0;
        const { count, rows: found } = list(views.db, tool.list, { filters, page: { limit, offset } });
        const rows = tool.bodies ? await withBodies(views.store, found) : found;
        return json({
          items: tool.item ? rows.map(tool.item) : rows,
          total_count: count,
          has_more: offset + rows.length < count,
          ...(filters.start_time !== undefined && given.start_time === undefined
            ? { window_start: filters.start_time }
            : {}),
        });
      },
    );
  }

  register(
    'get_workflow_monitor',
    {
      title: 'Workflow monitor',
      description:
        "One execution at a glance: status, its run's phase (imminent, physics, standby, completed) and RunState counters, slice counts by status, the lifecycle events (run_imminent, start_run, pause_run, resume_run, end_run with times), stf_count, errors (refused transitions, rejected messages, invalid events, ERROR logs), start/end time and duration.",
      inputSchema: EXECUTION_INPUT,
      annotations: readOnly,
    },
    async ({ execution_id }) => {
      await views.ready();
      return json({
        ...workflowMonitor(views.db, execution_id),
        ...link(`/#/executions/${encodeURIComponent(execution_id)}`),
      });
    },
  );

  register(
    'get_workflow_execution',
    {
      title: 'Workflow execution',
      description:
        'One execution: execution_id, workflow_name, namespace, status, executed_by, start/end time, parameter_values (the full merged configuration), machine_hash, run_numbers.',
      inputSchema: EXECUTION_INPUT,
      annotations: readOnly,
    },
    async ({ execution_id }) => {
      await views.ready();
      return json(getExecution(views.db, execution_id));
    },
  );

  register(
    'get_run_state',
    {
      title: 'RunState',
      description:
        "A run's RunState: phase, state/substate (the DAQ's E0-E1 stamp), target_worker_count, active_worker_count, stf_samples_received, slices_created/queued/processing/completed/failed (failed = failed for good), slices_retried, finished (phase completed and every slice final).",
      inputSchema: RUN_INPUT,
      annotations: readOnly,
    },
    async ({ run_number }) => {
      await views.ready();
      return json({ ...getRunState(views.db, run_number), ...link(`/#/runs/${run_number}`) });
    },
  );

  register(
    'get_tf_slice',
    {
      title: 'TF slice',
      description:
        "One TF slice with its retries, attempt, lease, last error and refusals. Name it by tf_filename (the slice's own file, e.g. swf.100010.000001_tf_001_slice_000.tf), or by fastmon_file (its TF sample) with slice_id, or by id.",
      inputSchema: SLICE_INPUT,
      annotations: readOnly,
    },
    async (args) => {
      await views.ready();
      if (args.fastmon_file !== undefined && args.slice_id === undefined) {
        throw new ValidationError('fastmon_file needs slice_id', { field: 'slice_id' });
      }
      return json(getSlice(views.db, args));
    },
  );

  registerOperatorTools(register, {
    db: views.db,
    ready: () => views.ready(),
    actions: views.actions,
    access: views.access ?? {
      allowed: false,
      refusal: 'this MCP server was not given the write token (send Authorization: Token <token> to /mcp)',
    },
    link,
    json,
  });

  return server;
}

/** Our tool names (each is also registered `swf_`-prefixed, the testbed's name). */
export const MCP_TOOL_NAMES = [
  'get_workflow_monitor',
  ...LIST_TOOLS.map((t) => t.name),
  'get_workflow_execution',
  'get_run_state',
  'get_tf_slice',
  ...OPERATOR_TOOL_NAMES,
] as const;
