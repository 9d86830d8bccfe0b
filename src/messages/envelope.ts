/**
 * How a message becomes a stored event — decided once, here (docs/messages.md explains it with examples).
 *
 * - `type` = the message's `msg_type` (snake_case, e.g. `stf_gen`, `slice`); domain events use their PascalCase name.
 * - `data` = the message body exactly as on the wire (it could be sent to the testbed's broker unchanged).
 * - `id` = the message id, a UUID (derived deterministically by the sender, see `deriveId`).
 * - `metadata` = `{ schemaVersion, correlationId, causationId, destination?, namespace, executionId?, runNumber? }`.
 *   The root event of a chain (nothing caused it) has `correlationId = causationId = its own id`; an event caused
 *   by another copies the cause's `correlationId` and takes the cause's id as `causationId`.
 *   `destination` is the broker destination the testbed would use; only wire messages have one.
 */
import { z } from 'zod';
import { ValidationError } from '../errors.js';
import type { DomainEventData, DomainEventType } from './domainEvents.js';
import { isUuid } from './ids.js';
import { issuesToError, isWorkerEndRun, parseDomainEvent, parseMessage } from './parse.js';
import type { Message } from './schemas.js';

/** Bump when the envelope or a body changes incompatibly; readers upcast older versions in `readMetadata`. */
export const SCHEMA_VERSION = 1 as const;

export const DESTINATIONS = {
  /** DAQ lifecycle, stf_ready, tf_file_registered (multicast). */
  epictopic: '/topic/epictopic',
  /** The slice queue (anycast; workers are competing consumers). */
  slices: '/queue/panda.transformer.slices',
  /** run_imminent_worker and the workers' end_run (multicast). */
  workers: '/topic/panda.workers',
  /** slice_result, as the fast processing agent reads it. */
  results: '/queue/panda.results.fastprocessing',
} as const;
export type Destination = (typeof DESTINATIONS)[keyof typeof DESTINATIONS];

export interface EventMetadata {
  schemaVersion: typeof SCHEMA_VERSION;
  /** The id of the event that started the chain (for a DAQ message chain: usually the execution's first event). */
  correlationId: string;
  /** The id of the event this one was decided from (its own id for a root event). */
  causationId: string;
  /** The broker destination, for wire messages. */
  destination?: string;
  namespace: string;
  executionId?: string;
  /** The run number, a JSON number. */
  runNumber?: number;
}

/** What the store's `NewEvent` needs, with our metadata (structurally a `NewEvent`). */
export interface EnvelopedEvent<Data = unknown> {
  id: string;
  type: string;
  data: Data;
  metadata: EventMetadata;
}

/** The event an output was decided from: its id and (if it has them) its metadata. */
export interface Cause {
  id: string;
  metadata?: unknown;
}

const metadataSchema = z.looseObject({
  schemaVersion: z.literal(SCHEMA_VERSION),
  correlationId: z.string().min(1),
  causationId: z.string().min(1),
  destination: z.string().min(1).optional(),
  namespace: z.string().min(1),
  executionId: z.string().min(1).optional(),
  runNumber: z.number().int().min(0).optional(),
});

/** Validates stored metadata (and upcasts older schema versions, of which there are none yet). */
export function readMetadata(raw: unknown): EventMetadata {
  const result = metadataSchema.safeParse(raw);
  if (!result.success) throw issuesToError('event metadata', result.error.issues, raw);
  return result.data;
}

/** The correlation and causation ids for an event with id `id` caused by `cause` (or a root event). */
export function chainIds(id: string, cause?: Cause): { correlationId: string; causationId: string } {
  if (!cause) return { correlationId: id, causationId: id };
  const m = cause.metadata as { correlationId?: unknown } | undefined;
  const correlationId = typeof m?.correlationId === 'string' && m.correlationId !== '' ? m.correlationId : cause.id;
  return { correlationId, causationId: cause.id };
}

/** The destination the testbed sends a message to (none for agent heartbeats and logs, which it sends over REST). */
export function destinationOf(m: Message): Destination | undefined {
  switch (m.msg_type) {
    case 'run_imminent':
    case 'start_run':
    case 'stf_gen':
    case 'pause_run':
    case 'resume_run':
    case 'stf_ready':
    case 'tf_file_registered':
      return DESTINATIONS.epictopic;
    case 'end_run':
      return isWorkerEndRun(m) ? DESTINATIONS.workers : DESTINATIONS.epictopic;
    case 'slice':
      return DESTINATIONS.slices;
    case 'run_imminent_worker':
      return DESTINATIONS.workers;
    case 'slice_result':
      return DESTINATIONS.results;
    case 'agent_heartbeat':
    case 'agent_log':
      return undefined;
    default: {
      const never: never = m;
      throw new ValidationError(`no destination for ${JSON.stringify(never)}`);
    }
  }
}

function assertId(id: string, type: string): void {
  if (!isUuid(id))
    throw new ValidationError(`event '${type}': id ${JSON.stringify(id)} is not a UUID`, { field: 'id' });
}

/**
 * A message as an event to append. The body is validated (`parseMessage`), so nothing malformed is written;
 * `namespace`, `executionId` and `runNumber` in the metadata come from the body.
 */
export function messageEvent<M extends Message>(
  message: M,
  options: { id: string; cause?: Cause; destination?: string },
): EnvelopedEvent<M> {
  parseMessage(message);
  assertId(options.id, message.msg_type);
  const destination = options.destination ?? destinationOf(message);
  const executionId = typeof message.execution_id === 'string' ? message.execution_id : undefined;
  const runId = typeof message.run_id === 'string' ? message.run_id : undefined;
  return {
    id: options.id,
    type: message.msg_type,
    data: message,
    metadata: {
      schemaVersion: SCHEMA_VERSION,
      ...chainIds(options.id, options.cause),
      ...(destination !== undefined ? { destination } : {}),
      namespace: message.namespace,
      ...(executionId !== undefined ? { executionId } : {}),
      ...(runId !== undefined ? { runNumber: Number(runId) } : {}),
    },
  };
}

/** A domain event as an event to append (validated). */
export function domainEvent<T extends DomainEventType>(
  type: T,
  data: DomainEventData<T>,
  options: {
    id: string;
    namespace: string;
    cause?: Cause;
    executionId?: string;
    runNumber?: number | string | bigint;
  },
): EnvelopedEvent<DomainEventData<T>> {
  parseDomainEvent(type, data);
  assertId(options.id, type);
  if (options.namespace === '')
    throw new ValidationError(`event '${type}': namespace is empty`, { field: 'namespace' });
  const d = data as { execution_id?: unknown; run_id?: unknown; run_number?: unknown };
  const executionId = options.executionId ?? (typeof d.execution_id === 'string' ? d.execution_id : undefined);
  const run = options.runNumber ?? (typeof d.run_id === 'string' ? d.run_id : undefined) ?? d.run_number;
  const runNumber = run === undefined ? undefined : Number(run);
  return {
    id: options.id,
    type,
    data,
    metadata: {
      schemaVersion: SCHEMA_VERSION,
      ...chainIds(options.id, options.cause),
      namespace: options.namespace,
      ...(executionId !== undefined ? { executionId } : {}),
      ...(runNumber !== undefined && Number.isSafeInteger(runNumber) ? { runNumber } : {}),
    },
  };
}
