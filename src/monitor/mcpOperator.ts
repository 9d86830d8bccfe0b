/**
 * The MCP tools an operator asks an assistant for beyond the records: the system at a glance, starting a run,
 * stopping an execution, a what-if replay of a recorded run. The acting ones (start, stop, what-if: it runs the
 * workflow's agents in this process) need the REST API's write token; the composition root supplies the actions,
 * and the transport decides whether the caller holds the token (`McpAccess`).
 */
import type { CallToolResult, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { ValidationError } from '../errors.js';
import type { ViewsDb } from '../projections/db.js';
import { list, logClock, type Row } from '../projections/queries.js';
import type { StopResult } from '../services/stopExecution.js';

/** A run to start (services/startRun.ts: the monitor does not reach the agents' code, so only the shapes here). */
export interface RunRequest {
  config?: string;
  set?: readonly string[];
  realtime?: boolean;
  speed?: number;
}

/**
 * What acting tools call (built by the composition root: it knows the configuration files, the user, the store):
 * `startRunInBackground`, `stopExecution`, `whatIf` of src/replay.
 */
export interface McpActions {
  startRun(request: RunRequest): Promise<{ execution_id: string; run_number: number; mode: string }>;
  stopExecution(executionId: string): Promise<StopResult>;
  /** The what-if's comparison (replay/whatIf.ts `WhatIfResult`). */
  whatIf(runNumber: number, sets: readonly string[]): Promise<{ run_number: number }>;
}

/** Whether this caller may use the acting tools; when not, the refusal says how to get the right. */
export type McpAccess = { allowed: true } | { allowed: false; refusal: string };

export interface OperatorContext {
  db: ViewsDb;
  ready(): Promise<unknown>;
  actions: McpActions | undefined;
  access: McpAccess;
  link(path: string): { monitor_url?: string };
  json(value: unknown): CallToolResult;
}

/** Registers a tool under our name and the testbed's `swf_`-prefixed one. */
export type Register = <S extends z.ZodObject>(
  name: string,
  config: { title: string; description: string; inputSchema: S; annotations: ToolAnnotations },
  handler: (args: z.output<S>) => Promise<CallToolResult>,
) => void;

/** `[fast_processing]` keys the tools take by name (each becomes a `--set`). */
const WORKFLOW_KEYS = {
  stf_count: z.number().int().min(0).max(1_000_000).describe('STF files in the run (0 = duration mode).'),
  physics_period_count: z
    .number()
    .int()
    .min(0)
    .max(10_000)
    .describe('Physics periods (pause_run/resume_run between them; 0 = until stopped).'),
  physics_period_duration: z
    .number()
    .positive()
    .max(86_400)
    .describe('Seconds of each physics period (duration mode, stf_count 0).'),
  stf_interval: z.number().positive().max(3_600).describe('Seconds between STFs during physics.'),
  target_worker_count: z.number().int().min(1).max(10_000).describe('PanDA workers sharing the slice queue.'),
  worker_failure_rate: z
    .number()
    .min(0)
    .max(1)
    .describe('Probability that a worker fails an attempt (the placeholder payload).'),
  slice_processing_time: z.number().positive().max(86_400).describe('Seconds to process one slice.'),
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 31)
    .describe('Seeds every random choice.'),
} as const;
const OPTIONAL_WORKFLOW_KEYS = Object.fromEntries(Object.entries(WORKFLOW_KEYS).map(([k, v]) => [k, v.optional()])) as {
  [K in keyof typeof WORKFLOW_KEYS]: z.ZodOptional<(typeof WORKFLOW_KEYS)[K]>;
};
type WorkflowKey = keyof typeof WORKFLOW_KEYS;

const setShape = z
  .array(z.string().min(3).max(300))
  .max(50)
  .describe(
    'More overrides, as `swf run --set`: "section.key=value" in TOML value syntax, e.g. "fast_processing.slices_per_sample=10".',
  );

/** Built once: the monitor builds a server per MCP request, and zod schemas are the costly part. */
const SYSTEM_STATE_INPUT = z.strictObject({
  namespace: z.string().min(1).max(256).optional().describe('Only this testbed namespace.'),
});
const START_INPUT = z.strictObject({
  config: z
    .string()
    .min(1)
    .max(256)
    .optional()
    .describe("Workflow configuration name in workflows/ (default: the testbed's, fast_processing_default)."),
  realtime: z.boolean().optional().describe('Pace the configured delays instead of virtual time.'),
  speed: z.number().positive().max(1000).optional().describe('Realtime divided by this factor (implies realtime).'),
  ...OPTIONAL_WORKFLOW_KEYS,
  set: setShape.optional(),
});
const STOP_INPUT = z.strictObject({
  execution_id: z.string().min(1).max(256).describe('The execution to stop, e.g. from get_system_state.'),
});
const WHAT_IF_INPUT = z.strictObject({
  run_number: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).describe('The recorded run, e.g. 100010.'),
  ...OPTIONAL_WORKFLOW_KEYS,
  set: setShape.optional(),
});

function setsOf(args: { set?: string[] | undefined } & Partial<Record<WorkflowKey, number>>): string[] {
  const sets: string[] = [];
  for (const key of Object.keys(WORKFLOW_KEYS) as WorkflowKey[]) {
    const v = args[key];
    if (typeof v === 'number') sets.push(`fast_processing.${key}=${v}`);
  }
  const extra = args.set;
  if (Array.isArray(extra)) for (const s of extra) if (typeof s === 'string') sets.push(s);
  return sets;
}

function needAccess(ctx: OperatorContext, tool: string): McpActions {
  if (!ctx.access.allowed) throw new ValidationError(`${tool} acts on the testbed: ${ctx.access.refusal}`);
  if (!ctx.actions) throw new ValidationError(`${tool}: this MCP server was started without the operator's actions`);
  return ctx.actions;
}

/** The system at a glance: agents healthy/stale, executions running, runs in progress. */
export function systemState(db: ViewsDb, namespace?: string): Row {
  const ns: Record<string, string> = namespace === undefined ? {} : { namespace };
  const agents = list(db, 'agents', { filters: { status: 'all', ...ns } }).rows;
  const health = (a: Row): string => (a.stale ? 'stale' : a.status === 'EXITED' ? 'exited' : 'healthy');
  const byHealth = { healthy: 0, stale: 0, exited: 0 };
  for (const a of agents) byHealth[health(a) as keyof typeof byHealth] += 1;
  const running = list(db, 'executions', { filters: { currently_running: true, ...ns }, page: { limit: 50 } });
  const open = list(db, 'runStates', { filters: { finished: false, ...ns }, page: { limit: 50 } });
  return {
    log_time: logClock(db) ?? null,
    agents: {
      total: agents.length,
      ...byHealth,
      items: agents.map((a) => ({
        instance_name: a.instance_name,
        agent_type: a.agent_type,
        status: a.status,
        operational_state: a.operational_state,
        last_heartbeat: a.last_heartbeat,
        health: health(a),
      })),
    },
    executions_running: {
      total: running.count,
      items: running.rows.map((e) => ({
        execution_id: e.execution_id,
        workflow_name: e.workflow_name,
        namespace: e.namespace,
        executed_by: e.executed_by,
        start_time: e.start_time,
        run_numbers: e.run_numbers,
      })),
    },
    runs_in_progress: {
      total: open.count,
      items: open.rows.map((r) => {
        const pending = Number(r.slices_queued ?? 0) + Number(r.slices_processing ?? 0);
        return {
          run_number: r.run_number,
          execution_id: r.execution_id,
          phase: r.phase,
          // `completed` is the end of data taking, not of the run: the slices still queued or processing say so
          status:
            r.phase === 'completed' ? `data taking ended, processing ${pending} slices` : `phase ${String(r.phase)}`,
          slices_created: r.slices_created,
          slices_queued: r.slices_queued,
          slices_processing: r.slices_processing,
          slices_completed: r.slices_completed,
          slices_failed: r.slices_failed,
          active_worker_count: r.active_worker_count,
        };
      }),
    },
  };
}

export function registerOperatorTools(register: Register, ctx: OperatorContext): void {
  const acting = { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false } as const;

  register(
    'get_system_state',
    {
      title: 'System state',
      description:
        'The testbed at a glance: agents (healthy, stale = no heartbeat for 3 minutes, exited; each with its last heartbeat), executions running, runs in progress (phase, and "processing N slices" after data taking ended), the log\'s latest time.',
      inputSchema: SYSTEM_STATE_INPUT,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async (args) => {
      await ctx.ready();
      return ctx.json(systemState(ctx.db, typeof args.namespace === 'string' ? args.namespace : undefined));
    },
  );

  register(
    'start_workflow',
    {
      title: 'Start a run',
      description:
        "Starts a fast processing run in the MCP server's process (all agents, as `swf run`) and returns its execution_id and run_number at once; follow it with get_workflow_monitor or get_run_state. Virtual time (as fast as the machine allows) unless realtime or speed is given. Parameters override the configuration. Needs the REST API's write token.",
      inputSchema: START_INPUT,
      annotations: acting,
    },
    async (args) => {
      const actions = needAccess(ctx, 'start_workflow');
      const run = await actions.startRun({
        ...(typeof args.config === 'string' ? { config: args.config } : {}),
        set: setsOf(args),
        ...(args.realtime === true ? { realtime: true } : {}),
        ...(typeof args.speed === 'number' ? { speed: args.speed } : {}),
      });
      return ctx.json({
        execution_id: run.execution_id,
        run_number: run.run_number,
        mode: run.mode,
        overrides: setsOf(args),
        ...ctx.link(`/#/runs/${run.run_number}`),
      });
    },
  );

  register(
    'stop_workflow',
    {
      title: 'Stop an execution',
      description:
        "Asks a running execution to stop (as `swf stop`): its DAQ sends end_run and the execution ends terminated. If nothing of it was appended for 3 minutes (its process is gone) it is ended here, terminated. outcome: requested or terminated. Needs the REST API's write token.",
      inputSchema: STOP_INPUT,
      annotations: { ...acting, destructiveHint: true },
    },
    async (args) => {
      const actions = needAccess(ctx, 'stop_workflow');
      const r = await actions.stopExecution(String(args.execution_id));
      return ctx.json({ ...r, ...ctx.link(`/#/executions/${encodeURIComponent(r.execution_id)}`) });
    },
  );

  register(
    'what_if_replay',
    {
      title: 'What-if replay',
      description:
        "Replays a recorded run with changed parameters (e.g. worker_failure_rate, target_worker_count, slice_processing_time) on a scratch store: the run's recorded DAQ announcements drive today's agents in virtual time. Returns the recorded and the what-if outcome (slices created/completed/failed, retries, duration) and their difference; the recorded run is not touched. Overrides of the DAQ's own keys cannot change anything and are reported as without effect. Needs the REST API's write token (it runs the agents in this process).",
      inputSchema: WHAT_IF_INPUT,
      annotations: { ...acting, readOnlyHint: true },
    },
    async (args) => {
      const actions = needAccess(ctx, 'what_if_replay');
      const sets = setsOf(args);
      if (sets.length === 0)
        throw new ValidationError('what_if_replay needs at least one changed parameter (e.g. worker_failure_rate)');
      const r = await actions.whatIf(Number(args.run_number), sets);
      return ctx.json({ ...r, ...ctx.link(`/#/runs/${r.run_number}`) });
    },
  );
}

/** The names `registerOperatorTools` registers (ours; each also `swf_`-prefixed). */
export const OPERATOR_TOOL_NAMES = ['get_system_state', 'start_workflow', 'stop_workflow', 'what_if_replay'] as const;
