/**
 * The merged configuration, validated: the testbed's sections and keys (testbed-facts §2.2, §6), so its own
 * files load, plus the keys this implementation needs under `[fast_processing]`, with defaults. Unknown sections
 * and keys are errors; so are wrong types and out-of-range values.
 */
import { z } from 'zod';

const nonEmpty = z.string().trim().min(1, 'must not be empty');

/**
 * Every numeric key has a range (docs/run.md lists them): a value outside it is refused when the configuration is
 * loaded, naming the key, instead of a run that fails every slice, never ends, or exhausts the machine.
 */
const between = (min: number, max: number, unit = '') =>
  z.number().min(min, `must be between ${min} and ${max}${unit}`).max(max, `must be between ${min} and ${max}${unit}`);
const wholeBetween = (min: number, max: number) =>
  z
    .number()
    .int('must be an integer')
    .min(min, `must be between ${min} and ${max}`)
    .max(max, `must be between ${min} and ${max}`);
/** One day: no delay of the simulation is longer. */
const DAY = 86_400;
const seconds = between(0, DAY, ' (seconds)');
const positive = wholeBetween(1, 1_000_000);
const rate = between(0, 1);

/** Any TOML value (free-form sections such as `[parameters]`). */
const tomlValue: z.ZodType<unknown> = z.unknown();

export const DAQ_DEFAULTS = {
  no_beam_not_ready_delay: 5,
  beam_not_ready_delay: 5,
  beam_ready_delay: 2,
  beam_not_ready_end_delay: 5,
  broadcast_delay: 1,
  stf_interval: 2.0,
  stf_generation_time: 0.1,
  physics_period_duration: 10,
  physics_period_count: 2,
  standby_duration: 2,
} as const;

/** `[daq_state_machine]` (testbed-facts §2.2). `stf_count` absent or 0 means duration mode. */
const daqShape = {
  no_beam_not_ready_delay: seconds.default(DAQ_DEFAULTS.no_beam_not_ready_delay),
  beam_not_ready_delay: seconds.default(DAQ_DEFAULTS.beam_not_ready_delay),
  beam_ready_delay: seconds.default(DAQ_DEFAULTS.beam_ready_delay),
  beam_not_ready_end_delay: seconds.default(DAQ_DEFAULTS.beam_not_ready_end_delay),
  broadcast_delay: seconds.default(DAQ_DEFAULTS.broadcast_delay),
  stf_interval: seconds.default(DAQ_DEFAULTS.stf_interval),
  stf_generation_time: seconds.default(DAQ_DEFAULTS.stf_generation_time),
  physics_period_duration: seconds.default(DAQ_DEFAULTS.physics_period_duration),
  physics_period_count: wholeBetween(0, 10_000).default(DAQ_DEFAULTS.physics_period_count),
  standby_duration: seconds.default(DAQ_DEFAULTS.standby_duration),
  stf_count: wholeBetween(0, 100_000).optional(),
};
export const daqSchema = z.strictObject(daqShape);

/** The DAQ keys a workflow section may lay over `[daq_state_machine]` (optional there, no defaults). */
const daqOverlay = {
  stf_count: wholeBetween(0, 100_000).optional(),
  physics_period_count: wholeBetween(0, 10_000).optional(),
  physics_period_duration: seconds.optional(),
  stf_interval: seconds.optional(),
  stf_generation_time: seconds.optional(),
  standby_duration: seconds.optional(),
  broadcast_delay: seconds.optional(),
  no_beam_not_ready_delay: seconds.optional(),
  beam_not_ready_delay: seconds.optional(),
  beam_ready_delay: seconds.optional(),
  beam_not_ready_end_delay: seconds.optional(),
};

export const FAST_PROCESSING_DEFAULTS = {
  target_worker_count: 30,
  stf_sampling_rate: 1.0,
  slices_per_sample: 15,
  slice_processing_time: 30,
  worker_rampup_time: 300,
  worker_rampdown_time: 60,
  tf_files_per_stf: 7,
  tf_count_per_stf: 1000,
  tf_size_fraction: 0.15,
  worker_failure_rate: 0.0,
  seed: 1,
  slice_lease_factor: 3,
  max_slice_retries: 3,
} as const;

const D = FAST_PROCESSING_DEFAULTS;

/** `[fast_processing]`: the spec's keys, ours (with defaults), and the DAQ keys a workflow may override. */
const fastProcessingShape = {
  ...daqOverlay,
  // At least one worker: nobody would process the slices. At most 1,000 in one process.
  target_worker_count: wholeBetween(1, 1_000).default(D.target_worker_count),
  stf_sampling_rate: rate.default(D.stf_sampling_rate),
  slices_per_sample: wholeBetween(1, 10_000).default(D.slices_per_sample),
  // Not 0: a lease of 0 s expires before any result comes back, and every slice would fail.
  slice_processing_time: z
    .number()
    .gt(0, `must be > 0 and <= ${DAY} (seconds)`)
    .max(DAY, `must be > 0 and <= ${DAY} (seconds)`)
    .default(D.slice_processing_time),
  worker_rampup_time: seconds.default(D.worker_rampup_time),
  worker_rampdown_time: seconds.default(D.worker_rampdown_time),
  tf_files_per_stf: wholeBetween(1, 10_000).default(D.tf_files_per_stf),
  tf_count_per_stf: positive.default(D.tf_count_per_stf),
  tf_size_fraction: z.number().gt(0, 'must be > 0 and <= 1').max(1, 'must be > 0 and <= 1').default(D.tf_size_fraction),
  worker_failure_rate: rate.default(D.worker_failure_rate),
  seed: wholeBetween(0, 2 ** 32 - 1).default(D.seed),
  // Below 1 every lease expires before its result: allowed, as the way to study lease expiry (docs/run.md).
  slice_lease_factor: z
    .number()
    .gt(0, 'must be > 0 and <= 100')
    .max(100, 'must be > 0 and <= 100')
    .default(D.slice_lease_factor),
  max_slice_retries: wholeBetween(0, 100).default(D.max_slice_retries),
  /** The testbed agent's TFs per slice (read by its code, absent from its TOMLs); accepted, not used here. */
  num_tf_per_slice: positive.optional(),
};
export const fastProcessingSchema = z.strictObject(fastProcessingShape).superRefine((fp, ctx) => {
  if (fp.tf_files_per_stf > fp.tf_count_per_stf) {
    ctx.addIssue({
      code: 'custom',
      path: ['tf_files_per_stf'],
      message: `must not exceed tf_count_per_stf (${fp.tf_count_per_stf})`,
    });
    return;
  }
  const partition = Math.floor(fp.tf_count_per_stf / fp.tf_files_per_stf);
  if (partition < fp.slices_per_sample) {
    ctx.addIssue({
      code: 'custom',
      path: ['slices_per_sample'],
      message: `must be <= ${partition}: each of the ${fp.tf_files_per_stf} TF samples is drawn from ${partition} TFs (tf_count_per_stf / tf_files_per_stf) and must fill every slice`,
    });
  }
});

const testbedSchema = z.strictObject({ namespace: nonEmpty });

const workflowSchema = z.strictObject({
  name: nonEmpty,
  version: z.union([z.string(), z.number()]).optional(),
  description: z.string().optional(),
  includes: z.array(nonEmpty).optional(),
  /** testbed.toml: the workflow configuration `testbed run` uses. */
  config: nonEmpty.optional(),
  /** testbed.toml: pace in real time (the testbed's `--realtime`). */
  realtime: z.boolean().optional(),
});

const agentSchema = z.strictObject({ enabled: z.boolean().optional(), script: z.string().optional() });

/** The testbed's `stf_datataking_default.toml` / `prompt_processing_default.toml` section. */
const simulationSchema = z.strictObject({
  ...daqOverlay,
  realtime: z.boolean().optional(),
  stf_source_pattern: z.string().optional(),
  stf_destination_pattern: z.string().optional(),
});

/** The testbed's destinations as its agents use them on the wire (testbed-wire corpus), the gateway's default. */
export const BROKER_DEFAULT_DESTINATIONS = [
  '/topic/epictopic',
  '/topic/panda.workers',
  '/topic/panda.slices',
  '/topic/panda.results',
  '/topic/panda.transformer',
  '/queue/workflow_control',
] as const;

const destination = z
  .string()
  .regex(/^\/(topic|queue)\/[A-Za-z0-9._-]+$/, 'must be a STOMP destination such as /topic/epictopic');

/** `[broker]`: how `swf gateway` meets the testbed's STOMP broker (docs/broker.md). */
export const brokerSchema = z.strictObject({
  /** stomp://HOST:PORT (`--broker` overrides it). */
  url: z
    .string()
    .regex(/^stomp:\/\/[^:/\s]+:[0-9]{1,5}$/, 'must be stomp://HOST:PORT')
    .default('stomp://127.0.0.1:61613'),
  user: z.string().optional(),
  password: z.string().optional(),
  /** ActiveMQ 5 and Artemis name durable subscriptions by different headers; the gateway sends the right ones. */
  flavor: z.enum(['activemq5', 'artemis']).default('activemq5'),
  /** The fixed STOMP `client-id` durable subscriptions hang on (default `swf-gateway-<namespace>`). */
  client_id: nonEmpty.optional(),
  /** What the gateway records. */
  destinations: z
    .array(destination)
    .min(1, 'must name at least one destination')
    .default([...BROKER_DEFAULT_DESTINATIONS]),
  /** Where swf-es publishes each outbound message kind (the real agents' destinations by default). */
  slice_destination: destination.default('/topic/panda.slices'),
  workers_destination: destination.default('/topic/panda.workers'),
  epic_destination: destination.default('/topic/epictopic'),
  results_destination: destination.default('/topic/panda.results'),
  /** Bodies larger than this are recorded as rejected messages (the raw body kept), not parsed. */
  max_body_bytes: z
    .number()
    .int('must be an integer')
    .min(1024, 'must be >= 1024')
    // an event holds at most 1 MiB, headers and metadata included
    .max(917_504, 'must be <= 917504 (896 KiB: a stored event holds at most 1 MiB)')
    .default(524_288),
  /** Reconnection: the first delay, doubled per failed attempt up to the maximum (milliseconds). */
  reconnect_delay_ms: wholeBetween(10, 600_000).default(200),
  max_reconnect_delay_ms: wholeBetween(10, 3_600_000).default(10_000),
  /**
   * STOMP heart-beats both ways (milliseconds; 0, the default, turns them off). With them on, ActiveMQ 5.17 stopped
   * delivering to our gateway process in the fault tests (docs/broker.md); a lost connection is still noticed by
   * TCP and on the next publish.
   */
  heartbeat_ms: wholeBetween(0, 3_600_000).default(0),
  /** Frames the broker may send before their acks (ActiveMQ's `activemq.prefetchSize`). */
  prefetch: positive.default(1000),
  /** The `ttl` header on slices, as the real fast processing agent sends it (milliseconds). */
  slice_ttl_ms: wholeBetween(1, 7 * 86_400_000).default(43_200_000),
  vo: nonEmpty.default('eic'),
});
export type BrokerConfig = z.output<typeof brokerSchema>;

/** Sections every configuration has (after defaults). */
const requiredSections = {
  testbed: testbedSchema,
  workflow: workflowSchema,
  daq_state_machine: daqSchema.prefault({}),
  fast_processing: fastProcessingSchema.prefault({}),
};

export const configSchema = z.strictObject({
  ...requiredSections,
  agents: z.record(z.string(), agentSchema).optional(),
  /** Free-form: the testbed's run_workflow parameters. */
  parameters: z.record(z.string(), tomlValue).optional(),
  simulation: simulationSchema.optional(),
  stf_processing: z.strictObject({}).optional(),
  prompt_processing: z.strictObject({ container: z.string().optional() }).optional(),
  /** Only `swf gateway` reads it; absent from executions that never met a broker. */
  broker: brokerSchema.optional(),
});

export type Config = z.output<typeof configSchema>;
export type DaqConfig = z.output<typeof daqSchema>;
export type FastProcessingConfig = z.output<typeof fastProcessingSchema>;
export type ConfigSection = keyof Config;

export const CONFIG_SECTIONS = Object.keys(configSchema.shape) as ConfigSection[];

/** Sections whose keys are free-form (any key may be set). */
export const FREE_SECTIONS: ReadonlySet<string> = new Set(['parameters']);

/** The keys the schema knows for a section (undefined: unknown section; 'any': free-form). */
export function knownKeys(section: string): readonly string[] | 'any' | undefined {
  if (FREE_SECTIONS.has(section)) return 'any';
  switch (section) {
    case 'testbed':
      return Object.keys(testbedSchema.shape);
    case 'workflow':
      return Object.keys(workflowSchema.shape);
    case 'daq_state_machine':
      return Object.keys(daqShape);
    case 'fast_processing':
      return Object.keys(fastProcessingShape);
    case 'simulation':
      return Object.keys(simulationSchema.shape);
    case 'stf_processing':
      return [];
    case 'prompt_processing':
      return ['container'];
    case 'agents':
      return Object.keys(agentSchema.shape);
    case 'broker':
      return Object.keys(brokerSchema.shape);
    default:
      return undefined;
  }
}
