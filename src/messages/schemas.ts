/**
 * The wire vocabulary: one zod schema per message of the fast processing workflow.
 *
 * Field names and body shapes are the Python testbed's (testbed-facts §1), so a stored message could be sent to
 * the testbed's broker unchanged. We add what the testbed drops (DESIGN.md semantics 1): every body carries
 * `execution_id`, `run_id` (a string), `namespace`, `sender` and `created_at`. Unknown extra fields pass through
 * untouched; the known ones are validated.
 *
 * Two profiles:
 * - `swf` (the default): what our agents write and read. Everything DESIGN.md requires is required.
 * - `testbed`: what the Python testbed actually sends. The fields we add are optional (or nullable where the
 *   testbed sends `null`) and timestamps may be naive; everything the testbed does send is still checked.
 */
import { z } from 'zod';

// ---- building blocks ------------------------------------------------------------------------------

const nonEmpty = z.string().min(1, 'must not be empty');
/** A run number as the testbed sends it: a string of digits, e.g. "100010". */
export const runIdSchema = z.string().regex(/^[0-9]+$/, 'must be a run number as a string of digits, e.g. "100010"');
/** ISO-8601 UTC with `Z` (DESIGN.md semantics 10). */
export const isoUtcSchema = z.iso.datetime({ message: 'must be an ISO-8601 UTC timestamp ending in Z' });
const count = z.number().int().min(0);
const positive = z.number().int().min(1);
const seconds = z.number().min(0);

/** E0-E1 states and substates (testbed-facts §2.1). */
export const DAQ_STATES = ['off', 'no_beam', 'beam', 'run', 'calib', 'test'] as const;
export const DAQ_SUBSTATES = [
  'not_ready',
  'ready',
  'physics',
  'standby',
  'lumi',
  'eic',
  'epic',
  'daq',
  'calib',
] as const;
export type DaqState = (typeof DAQ_STATES)[number];
export type DaqSubstate = (typeof DAQ_SUBSTATES)[number];
const daqState = z.enum(DAQ_STATES);
const daqSubstate = z.enum(DAQ_SUBSTATES);

/** Message types (`msg_type`). The DAQ's and the workers' `end_run` share one type; the shape tells them apart. */
export const MESSAGE_TYPES = [
  'run_imminent',
  'start_run',
  'stf_gen',
  'pause_run',
  'resume_run',
  'end_run',
  'stf_ready',
  'tf_file_registered',
  'slice',
  'slice_result',
  'run_imminent_worker',
  'agent_heartbeat',
  'agent_log',
] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

/**
 * One name per schema: like `MessageType`, but the workers' `end_run` (content-nested, on `/topic/panda.workers`)
 * is `worker_end_run`.
 */
export const MESSAGE_KINDS = [...MESSAGE_TYPES, 'worker_end_run'] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];

// ---- swf profile -----------------------------------------------------------------------------------

/** On every message we write. */
const common = {
  namespace: nonEmpty,
  sender: nonEmpty,
  execution_id: nonEmpty,
  run_id: runIdSchema,
  created_at: isoUtcSchema,
};

/** DAQ lifecycle messages (flat, `/topic/epictopic`) also carry the testbed's clock fields. */
const daqCommon = {
  ...common,
  /** The testbed's `datetime.now().isoformat()`; ours is the clock's time, the same as `created_at`. */
  timestamp: isoUtcSchema,
  /** Seconds since the execution started (SimPy's `env.now` in the testbed). */
  simulation_tick: seconds,
};

const stamped = { ...daqCommon, state: daqState, substate: daqSubstate };

const runImminent = z.looseObject({ msg_type: z.literal('run_imminent'), ...stamped });
const startRun = z.looseObject({ msg_type: z.literal('start_run'), ...stamped });
const pauseRun = z.looseObject({ msg_type: z.literal('pause_run'), ...stamped, reason: z.string().optional() });
const resumeRun = z.looseObject({ msg_type: z.literal('resume_run'), ...stamped });
const stfGen = z.looseObject({ msg_type: z.literal('stf_gen'), ...stamped, filename: nonEmpty, sequence: positive });
const endRun = z.looseObject({ msg_type: z.literal('end_run'), ...daqCommon, total_stf_files: count });

const stfReadyShape = {
  msg_type: z.literal('stf_ready'),
  ...common,
  filename: nonEmpty,
  checksum: nonEmpty,
  size_bytes: count,
  sequence: positive,
  processed_by: nonEmpty.optional(),
  // copied from stf_gen by the testbed's data agent
  state: daqState.nullish(),
  substate: daqSubstate.nullish(),
  simulation_tick: seconds.nullish(),
  file_url: z.string().nullish(),
  start: z.unknown().optional(),
  end: z.unknown().optional(),
};
const stfReady = z.looseObject(stfReadyShape);

function tfRangeAddsUp(v: { tf_first: number; tf_last: number; tf_count: number }, ctx: z.RefinementCtx): void {
  if (v.tf_last < v.tf_first) {
    ctx.addIssue({ code: 'custom', path: ['tf_last'], message: `must be >= tf_first (${v.tf_first})` });
  } else if (v.tf_last - v.tf_first + 1 !== v.tf_count) {
    ctx.addIssue({
      code: 'custom',
      path: ['tf_count'],
      message: `must equal tf_last - tf_first + 1 (${v.tf_last - v.tf_first + 1})`,
    });
  }
}

const tfFileRegisteredShape = {
  msg_type: z.literal('tf_file_registered'),
  ...common,
  tf_filename: nonEmpty,
  stf_filename: nonEmpty,
  tf_count: positive,
  tf_first: count,
  tf_last: count,
  file_size_bytes: count,
  processed_by: nonEmpty.optional(),
  tf_file_id: z.string().optional(),
  status: z.string().optional(),
  timestamp: z.string().optional(),
};
const tfFileRegistered = z.looseObject(tfFileRegisteredShape).superRefine(tfRangeAddsUp);

/** Content-nested messages keep the testbed's `{msg_type, run_id, created_at, content}` and add the rest on top. */
const nestedCommon = common;

const sliceContentShape = {
  run_id: runIdSchema,
  execution_id: nonEmpty,
  /** The testbed's request id (a uuid4 there); ours is derived, so a re-run sends the same one. */
  req_id: z.uuid(),
  /** The STF. */
  filename: nonEmpty,
  /** The slice's own file name (`<sample stem>_slice_<NNN>.tf`). */
  tf_filename: nonEmpty,
  /** The TF sample the slice was cut from (`<stf stem>_tf_<NNN>.tf`). */
  fastmon_file: nonEmpty,
  slice_id: count,
  /** First and last TF of the slice (inclusive). */
  start: count,
  end: count,
  tf_count: positive,
  state: z.literal('queued'),
  substate: z.literal('new'),
  /** 1-based; a retry is a new `slice` message with `attempt + 1`. */
  attempt: positive,
  slice_processing_time: seconds,
  /** `fake`/`mock` makes a real swf-transform worker sleep instead of running EICrecon (testbed-facts §7). */
  file_type: z.string().optional(),
};

function sliceRangeAddsUp(v: { start: number; end: number; tf_count: number }, ctx: z.RefinementCtx): void {
  if (v.end < v.start) {
    ctx.addIssue({ code: 'custom', path: ['end'], message: `must be >= start (${v.start})` });
  } else if (v.end - v.start + 1 !== v.tf_count) {
    ctx.addIssue({
      code: 'custom',
      path: ['tf_count'],
      message: `must equal end - start + 1 (${v.end - v.start + 1})`,
    });
  }
}

/** Where a message keeps `run_id`/`execution_id` twice (top level and content), the two must agree. */
function contentAgrees(
  v: { run_id?: string | null; execution_id?: string | null; content: unknown },
  ctx: z.RefinementCtx,
): void {
  if (typeof v.content !== 'object' || v.content === null) return;
  const content = v.content as { run_id?: unknown; execution_id?: unknown };
  for (const key of ['run_id', 'execution_id'] as const) {
    const outer = v[key];
    const inner = content[key];
    if (outer != null && inner != null && outer !== inner) {
      ctx.addIssue({
        code: 'custom',
        path: ['content', key],
        message: `must equal the top-level ${key} (${JSON.stringify(outer)}), got ${JSON.stringify(inner)}`,
      });
    }
  }
}

const slice = z
  .looseObject({
    msg_type: z.literal('slice'),
    ...nestedCommon,
    content: z.looseObject(sliceContentShape).superRefine(sliceRangeAddsUp),
  })
  .superRefine(contentAgrees);

const sliceResultInner = z.looseObject({
  state: z.boolean(),
  result: z.unknown().optional(),
  error: z.string().nullish(),
});

const sliceResultContentShape = {
  slice_id: count,
  /** The slice's file name, as in the `slice` message. */
  tf_filename: nonEmpty,
  attempt: positive,
  state: z.enum(['done', 'failed']),
  requested_at: z.string().nullish(),
  processing_start_at: z.string().nullish(),
  processed_at: z.string().nullish(),
  hostname: z.string().nullish(),
  result: sliceResultInner.nullish(),
};
const sliceResult = z.looseObject({
  msg_type: z.literal('slice_result'),
  ...nestedCommon,
  content: z.looseObject(sliceResultContentShape),
});

const runImminentWorkerContentShape = {
  run_id: runIdSchema,
  execution_id: nonEmpty,
  core_count: count,
  target_worker_count: count,
  slice_processing_time: seconds,
  worker_rampup_time: seconds,
  worker_rampdown_time: seconds,
};
const runImminentWorker = z
  .looseObject({
    msg_type: z.literal('run_imminent_worker'),
    ...nestedCommon,
    content: z.looseObject(runImminentWorkerContentShape),
  })
  .superRefine(contentAgrees);

const workerEndRunContentShape = { run_id: runIdSchema, execution_id: nonEmpty, total_stf_files: count };
const workerEndRun = z
  .looseObject({
    msg_type: z.literal('end_run'),
    ...nestedCommon,
    content: z.looseObject(workerEndRunContentShape),
  })
  .superRefine(contentAgrees);

export const AGENT_STATUSES = ['OK', 'WARNING', 'ERROR', 'EXITED'] as const;
export const OPERATIONAL_STATES = ['STARTING', 'READY', 'PROCESSING', 'EXITED'] as const;

const agentHeartbeat = z.looseObject({
  msg_type: z.literal('agent_heartbeat'),
  instance_name: nonEmpty,
  agent_type: nonEmpty,
  status: z.enum(AGENT_STATUSES),
  operational_state: z.enum(OPERATIONAL_STATES),
  namespace: nonEmpty,
  pid: count,
  hostname: nonEmpty,
  sender: nonEmpty,
  created_at: isoUtcSchema,
  execution_id: nonEmpty.nullable(),
  run_id: runIdSchema.nullable(),
  description: z.string().optional(),
});

const agentLog = z.looseObject({
  msg_type: z.literal('agent_log'),
  instance_name: nonEmpty,
  /** Python logging levels: 50 CRITICAL, 40 ERROR, 30 WARNING, 20 INFO, 10 DEBUG, 0 NOTSET. */
  level: z.number().int().min(0).max(50),
  levelname: nonEmpty,
  message: z.string(),
  sender: nonEmpty,
  namespace: nonEmpty,
  created_at: isoUtcSchema,
  execution_id: nonEmpty.nullish(),
  run_id: runIdSchema.nullish(),
});

/** The `swf` profile: what our agents write. */
export const messageSchemas = {
  run_imminent: runImminent,
  start_run: startRun,
  stf_gen: stfGen,
  pause_run: pauseRun,
  resume_run: resumeRun,
  end_run: endRun,
  stf_ready: stfReady,
  tf_file_registered: tfFileRegistered,
  slice,
  slice_result: sliceResult,
  run_imminent_worker: runImminentWorker,
  worker_end_run: workerEndRun,
  agent_heartbeat: agentHeartbeat,
  agent_log: agentLog,
} as const satisfies Record<MessageKind, z.ZodType>;

export type RunImminent = z.infer<typeof runImminent>;
export type StartRun = z.infer<typeof startRun>;
export type StfGen = z.infer<typeof stfGen>;
export type PauseRun = z.infer<typeof pauseRun>;
export type ResumeRun = z.infer<typeof resumeRun>;
/** The DAQ's `end_run` (flat, `/topic/epictopic`). */
export type EndRun = z.infer<typeof endRun>;
export type StfReady = z.infer<typeof stfReady>;
export type TfFileRegistered = z.infer<typeof tfFileRegistered>;
export type Slice = z.infer<typeof slice>;
export type SliceContent = Slice['content'];
export type SliceResult = z.infer<typeof sliceResult>;
export type SliceResultContent = SliceResult['content'];
export type RunImminentWorker = z.infer<typeof runImminentWorker>;
/** The fast processing agent's `end_run` to the workers (content-nested, `/topic/panda.workers`). */
export type WorkerEndRun = z.infer<typeof workerEndRun>;
export type AgentHeartbeat = z.infer<typeof agentHeartbeat>;
export type AgentLog = z.infer<typeof agentLog>;

export type DaqLifecycleMessage = RunImminent | StartRun | StfGen | PauseRun | ResumeRun | EndRun;

export type Message =
  | DaqLifecycleMessage
  | StfReady
  | TfFileRegistered
  | Slice
  | SliceResult
  | RunImminentWorker
  | WorkerEndRun
  | AgentHeartbeat
  | AgentLog;

/** The message with that kind (`worker_end_run` for the workers' `end_run`). */
export type MessageOfKind<K extends MessageKind> = z.infer<(typeof messageSchemas)[K]>;

// ---- testbed profile -------------------------------------------------------------------------------

/**
 * A timestamp as the testbed writes it: Python's `isoformat()`, aware (`+00:00`, `Z`) or naive. Which zone a naive
 * one is in is decided once, by `testbedTimeToIso` (UTC).
 */
export const testbedTimeSchema = z
  .string()
  .regex(
    /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$/,
    'must be an ISO-8601 timestamp (naive or with a zone)',
  );

/** What the testbed may leave out or send as null. */
const loose = {
  namespace: nonEmpty.nullish(),
  sender: nonEmpty.nullish(),
  execution_id: nonEmpty.nullish(),
  created_at: testbedTimeSchema.optional(),
};
const looseDaq = { ...loose, timestamp: testbedTimeSchema };

function nested<S extends z.ZodRawShape>(msgType: string, content: z.ZodType, extra?: S) {
  return z
    .looseObject({
      msg_type: z.literal(msgType),
      run_id: runIdSchema,
      ...loose,
      content,
      ...extra,
    })
    .superRefine(contentAgrees);
}

/** The `testbed` profile: accepts the bodies the Python testbed sends (testbed-facts §1). */
export const testbedMessageSchemas = {
  run_imminent: runImminent.extend(looseDaq),
  start_run: startRun.extend(looseDaq),
  stf_gen: stfGen.extend(looseDaq),
  pause_run: pauseRun.extend(looseDaq),
  resume_run: resumeRun.extend(looseDaq),
  end_run: endRun.extend(looseDaq),
  stf_ready: z.looseObject({
    ...stfReadyShape,
    ...loose,
    checksum: z.string().nullish(),
    size_bytes: count.nullish(),
    sequence: positive.nullish(),
  }),
  tf_file_registered: z
    .looseObject({ ...tfFileRegisteredShape, ...loose, file_size_bytes: count.nullish() })
    .superRefine(tfRangeAddsUp),
  slice: nested(
    'slice',
    z
      .looseObject({
        ...sliceContentShape,
        // the real fast processing agent sends slices cut after it handled end_run with a null execution id
        execution_id: nonEmpty.nullish(),
        req_id: nonEmpty,
        fastmon_file: nonEmpty.optional(),
        attempt: positive.optional(),
        slice_processing_time: seconds.optional(),
      })
      .superRefine(sliceRangeAddsUp),
  ),
  slice_result: nested(
    'slice_result',
    z.looseObject({
      ...sliceResultContentShape,
      slice_id: count.optional(),
      tf_filename: nonEmpty.optional(),
      attempt: positive.optional(),
      requested_at: testbedTimeSchema.nullish(),
    }),
    // a transformer that took its own heartbeat for a slice answers with a null run_id (testbed-wire README)
    { run_id: runIdSchema.nullable() },
  ),
  run_imminent_worker: nested(
    'run_imminent_worker',
    z.looseObject({
      ...runImminentWorkerContentShape,
      execution_id: nonEmpty.nullish(),
    }),
  ),
  worker_end_run: nested(
    'end_run',
    z.looseObject({ ...workerEndRunContentShape, execution_id: nonEmpty.nullish(), total_stf_files: count.optional() }),
  ),
  agent_heartbeat: agentHeartbeat.extend({ created_at: testbedTimeSchema }),
  agent_log: agentLog.extend({ created_at: testbedTimeSchema }),
} as const satisfies Record<MessageKind, z.ZodType>;

// ---- testbed control messages ----------------------------------------------------------------------

/**
 * Messages the real testbed puts on the broker that are not part of the fast processing workflow's vocabulary
 * (no swf-es agent sends or acts on them): the workflow runner's command, the transformers' liveness beat, and
 * the PanDA transceiver's task and transformer control. The gateway records them; the monitor lists them.
 */
export const TESTBED_CONTROL_TYPES = [
  'run_workflow',
  'heartbeat',
  'create_workflow_task',
  'close_workflow_task',
  'stop_transformer',
] as const;
export type TestbedControlType = (typeof TESTBED_CONTROL_TYPES)[number];

const controlNested = (msgType: TestbedControlType, content: z.ZodType) =>
  z
    .looseObject({
      msg_type: z.literal(msgType),
      run_id: runIdSchema,
      created_at: testbedTimeSchema,
      namespace: nonEmpty.nullish(),
      content,
    })
    .superRefine(contentAgrees);

export const testbedControlSchemas = {
  /** `send_workflow_command.py run`, to `/queue/workflow_control`. */
  run_workflow: z.looseObject({
    msg_type: z.literal('run_workflow'),
    namespace: nonEmpty,
    workflow_name: nonEmpty,
    config: nonEmpty.nullish(),
    realtime: z.boolean().optional(),
    params: z.record(z.string(), z.unknown()).optional(),
    timestamp: testbedTimeSchema.optional(),
  }),
  /** A transformer's liveness beat (`timestamp` in epoch seconds), on each destination it uses. */
  heartbeat: z.looseObject({
    msg_type: z.literal('heartbeat'),
    internal_id: nonEmpty,
    namespace: nonEmpty.nullish(),
    timestamp: z.number().min(0),
  }),
  create_workflow_task: controlNested(
    'create_workflow_task',
    z.looseObject({
      run_id: runIdSchema,
      created_at: testbedTimeSchema.optional(),
      workflow: z.looseObject({ name: nonEmpty, scope: z.string().optional() }),
    }),
  ),
  close_workflow_task: controlNested(
    'close_workflow_task',
    z.looseObject({
      run_id: runIdSchema,
      created_at: testbedTimeSchema.optional(),
      request_id: z.union([z.number(), z.string()]).nullish(),
      transform_id: z.union([z.number(), z.string()]).nullish(),
      workload_id: z.union([z.number(), z.string()]).nullish(),
    }),
  ),
  stop_transformer: controlNested('stop_transformer', z.looseObject({ requested_at: testbedTimeSchema.nullish() })),
} as const satisfies Record<TestbedControlType, z.ZodType>;

export type TestbedControlMessage = {
  [K in TestbedControlType]: z.infer<(typeof testbedControlSchemas)[K]>;
}[TestbedControlType];

export type TestbedMessageOfKind<K extends MessageKind> = z.infer<(typeof testbedMessageSchemas)[K]>;
export type TestbedMessage = { [K in MessageKind]: TestbedMessageOfKind<K> }[MessageKind];
