/**
 * Events that are not wire messages: what the system decided or observed, in PascalCase past tense.
 * They live in the same log as the messages and are validated the same way.
 */
import { z } from 'zod';
import { isoUtcSchema, MESSAGE_TYPES, runIdSchema } from './schemas.js';

const nonEmpty = z.string().min(1, 'must not be empty');
const count = z.number().int().min(0);
const positive = z.number().int().min(1);

export const EXECUTION_STATUSES = ['completed', 'failed', 'terminated'] as const;
export type ExecutionStatus = (typeof EXECUTION_STATUSES)[number];

const workflowExecutionStarted = z.looseObject({
  execution_id: nonEmpty,
  workflow_name: nonEmpty,
  namespace: nonEmpty,
  executed_by: nonEmpty,
  /** The full merged configuration (testbed-facts §3.10). */
  parameter_values: z.record(z.string(), z.unknown()),
  /** sha256 (hex) of the canonical JSON of `machine_definitions`. */
  machine_hash: z.string().regex(/^[0-9a-f]{64}$/, 'must be a sha256 hex digest'),
  machine_definitions: z.record(z.string(), z.unknown()),
  start_time: isoUtcSchema,
});

const workflowExecutionFinished = z.looseObject({
  execution_id: nonEmpty,
  status: z.enum(EXECUTION_STATUSES),
  end_time: isoUtcSchema,
  reason: z.string().optional(),
});

const runNumberAllocated = z.looseObject({
  run_number: positive,
  execution_id: nonEmpty,
});

const sliceProcessingStarted = z.looseObject({
  run_id: runIdSchema,
  execution_id: nonEmpty,
  namespace: nonEmpty,
  slice_id: count,
  /** The slice's file name. */
  tf_filename: nonEmpty,
  /** The TF sample's file name. */
  fastmon_file: nonEmpty,
  attempt: positive,
  worker: nonEmpty,
  started_at: isoUtcSchema,
  lease_deadline: isoUtcSchema,
});

const sliceLeaseExpired = z.looseObject({
  run_id: runIdSchema,
  execution_id: nonEmpty,
  namespace: nonEmpty,
  tf_filename: nonEmpty,
  attempt: positive,
  worker: nonEmpty,
  expired_at: isoUtcSchema,
});

const messageRejected = z.looseObject({
  agent: nonEmpty,
  reason: nonEmpty,
  original_event_id: nonEmpty,
  original_type: z.string(),
  original_stream: nonEmpty,
  /** The rejected event's log position (a JSON number). */
  original_position: count,
});

const runTransitionRefused = z.looseObject({
  agent: nonEmpty,
  run_id: runIdSchema,
  /** The refused message's `msg_type`. */
  msg_type: nonEmpty,
  /** The run's phase when it was refused. */
  state: nonEmpty,
  reason: nonEmpty,
  original_event_id: nonEmpty,
});

const datasetShape = {
  run_id: runIdSchema,
  execution_id: nonEmpty,
  namespace: nonEmpty,
  dataset: nonEmpty,
};
const datasetOpened = z.looseObject(datasetShape);
const datasetClosed = z.looseObject({ ...datasetShape, total_stf_files: count.optional() });

/** A counter event on `swf-execution-ids`: the sequence is the NNNN of `<workflow>-<user>-NNNN`. */
const executionIdAllocated = z.looseObject({
  execution_id: nonEmpty,
  sequence: positive,
});

/**
 * The fast processing agent's word that a run is finished: phase completed and every slice final
 * (DESIGN.md semantics 7). The DAQ simulator then completes the execution.
 */
const runFinished = z.looseObject({
  run_id: runIdSchema,
  execution_id: nonEmpty,
  namespace: nonEmpty,
  finished_at: isoUtcSchema,
  stf_files: count,
  stf_samples_received: count,
  slices_created: count,
  slices_completed: count,
  slices_failed: count,
  slices_retried: count,
});

const stopRequested = z.looseObject({
  execution_id: nonEmpty,
  requested_at: isoUtcSchema,
});

/**
 * A broker frame the gateway could not read as a testbed message (not JSON, too large, no or unknown `msg_type`,
 * a schema failure): recorded with its raw body, because nothing from the broker is dropped.
 */
const brokerMessageRejected = z.looseObject({
  reason: nonEmpty,
  destination: nonEmpty,
  message_id: nonEmpty,
  headers: z.record(z.string(), z.string()),
  /** The body as received (UTF-8 text); of a body over 64 KiB, its first 64 KiB (`raw_body_truncated`). */
  raw_body: z.string(),
  body_bytes: count.optional(),
  raw_body_truncated: z.boolean().optional(),
  body_sha256: z.string().optional(),
  received_at: isoUtcSchema,
});

export const domainEventSchemas = {
  BrokerMessageRejected: brokerMessageRejected,
  WorkflowExecutionStarted: workflowExecutionStarted,
  WorkflowExecutionFinished: workflowExecutionFinished,
  RunNumberAllocated: runNumberAllocated,
  SliceProcessingStarted: sliceProcessingStarted,
  SliceLeaseExpired: sliceLeaseExpired,
  MessageRejected: messageRejected,
  RunTransitionRefused: runTransitionRefused,
  DatasetOpened: datasetOpened,
  DatasetClosed: datasetClosed,
  StopRequested: stopRequested,
  ExecutionIdAllocated: executionIdAllocated,
  RunFinished: runFinished,
} as const;

export type DomainEventType = keyof typeof domainEventSchemas;
export const DOMAIN_EVENT_TYPES = Object.keys(domainEventSchemas) as DomainEventType[];

export type DomainEventData<T extends DomainEventType> = z.infer<(typeof domainEventSchemas)[T]>;
export type WorkflowExecutionStarted = DomainEventData<'WorkflowExecutionStarted'>;
export type WorkflowExecutionFinished = DomainEventData<'WorkflowExecutionFinished'>;
export type RunNumberAllocated = DomainEventData<'RunNumberAllocated'>;
export type SliceProcessingStarted = DomainEventData<'SliceProcessingStarted'>;
export type SliceLeaseExpired = DomainEventData<'SliceLeaseExpired'>;
export type MessageRejected = DomainEventData<'MessageRejected'>;
export type RunTransitionRefused = DomainEventData<'RunTransitionRefused'>;
export type DatasetOpened = DomainEventData<'DatasetOpened'>;
export type DatasetClosed = DomainEventData<'DatasetClosed'>;
export type StopRequested = DomainEventData<'StopRequested'>;
export type ExecutionIdAllocated = DomainEventData<'ExecutionIdAllocated'>;
export type RunFinished = DomainEventData<'RunFinished'>;

/** A domain event as `{type, data}`, discriminated by `type`. */
export type DomainEvent = { [T in DomainEventType]: { type: T; data: DomainEventData<T> } }[DomainEventType];

/**
 * Every stored event type: the message types (snake_case, the wire's `msg_type`) and the domain events
 * (PascalCase). `EVENT_TYPES.stf_gen === 'stf_gen'`, `EVENT_TYPES.SliceLeaseExpired === 'SliceLeaseExpired'`.
 */
export const EVENT_TYPES = Object.freeze(
  Object.fromEntries([...MESSAGE_TYPES, ...DOMAIN_EVENT_TYPES].map((t) => [t, t])) as {
    readonly [T in (typeof MESSAGE_TYPES)[number] | DomainEventType]: T;
  },
);
export type EventType = keyof typeof EVENT_TYPES;
