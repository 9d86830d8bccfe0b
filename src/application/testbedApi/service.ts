/**
 * The testbed monitor's write API as an application service: each write reads the stream it concerns, decides
 * (pure: the time comes in with the request), and appends past-tense events with an exact expected revision,
 * retrying a lost race. No table is written: projections fold the events (`projections/testbedRecords.ts`). The
 * HTTP routes are a thin adapter over this; a CLI command or an MCP tool can call it the same way.
 *
 * Answers are the real monitor's (testbed-facts §3, §5): DRF records, 201 on create, 200 on update; a duplicate
 * unique key is a 400 with DRF's message, except that a POST repeating an existing record exactly (a client retrying
 * after a lost answer) gets that record back and writes nothing.
 */
import { randomUUID } from 'node:crypto';
import {
  type AppendResult,
  type EventStore,
  type NewEvent,
  type StoredEvent,
  type StreamAppend,
} from '../../eventStore/eventStore.js';
import { isExpectedVersionConflict, isNotFoundError, NotFoundError } from '../../errors.js';
import { FIRST_RUN_NUMBER } from '../../messages/streams.js';
import { messageEvent } from '../../messages/envelope.js';
import { AGENT_STATUSES, OPERATIONAL_STATES } from '../../messages/schemas.js';
import { checkFields, FieldValidationError, type FieldSpecs } from './fields.js';
import {
  COUNTER_STREAMS,
  foldRecord,
  recordStreams,
  type RecordFields,
  sampleOfSliceFile,
  stfFileId,
  type TestbedEventType,
  tfFileId,
} from './records.js';

export interface ApiAnswer {
  status: number;
  body: unknown;
}

/** How the service makes its commits durable when the store's are not by themselves (see monitor/walSync.ts). */
export interface Durability {
  /** Awaited before each append: resolves when the write may go (with the others of its group commit). */
  ready(): Promise<void>;
  /** A commit has been written (it returned); it may not be on disk yet. */
  committed(): void;
  /** Resolves once every commit noted so far is on disk; at once when none is waiting. */
  settle(): Promise<void>;
}

export interface TestbedApiOptions {
  store: EventStore;
  /** The namespace of records that name none (logs, agents without one). */
  namespace: string;
  now?: () => Date;
  /**
   * When the store's commits are not durable by themselves (SQLite at `synchronous = NORMAL`): told of each commit,
   * and awaited before every answer, so that a 2xx means on disk (see monitor/walSync.ts: one fdatasync, off the
   * main thread, for all the commits of a moment). Default: the store's commits are durable when they return.
   */
  durability?: Durability;
}

export const FILE_STATUSES = ['registered', 'processing', 'processed', 'failed', 'done'] as const;
const MAX_RETRIES = 200;
/** Entries each of the service's caches keeps (the oldest goes first). */
const MAX_CACHED = 20_000;

/** A Map that forgets its oldest entry past `max`. */
class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly max: number) {
    super();
  }
  override set(key: K, value: V): this {
    if (!this.has(key) && this.size >= this.max) this.delete(this.keys().next().value as K);
    return super.set(key, value);
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

async function readEvents(store: EventStore, stream: string): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  try {
    for await (const e of store.readStream(stream)) out.push(e);
  } catch (e: unknown) {
    if (!isNotFoundError(e)) throw e;
  }
  return out;
}

async function headOf(store: EventStore, stream: string): Promise<bigint | undefined> {
  try {
    for await (const e of store.readStream(stream, { direction: 'backwards', maxCount: 1 })) return e.revision;
  } catch (e: unknown) {
    if (!isNotFoundError(e)) throw e;
  }
  return undefined;
}

/** The event at one revision of a counter stream (the record an AutoField id names). */
async function atRevision(store: EventStore, stream: string, revision: bigint): Promise<StoredEvent | undefined> {
  try {
    for await (const e of store.readStream(stream, { from: revision, maxCount: 1 })) return e;
  } catch (e: unknown) {
    if (!isNotFoundError(e)) throw e;
  }
  return undefined;
}

const expectedOf = (head: bigint | undefined): 'no_stream' | bigint => (head === undefined ? 'no_stream' : head);

const notFound = (): NotFoundError => new NotFoundError('Not found.');

/** DRF's answer to a duplicate unique key. */
const unique = (field: string, model: string): FieldValidationError =>
  new FieldValidationError({ [field]: [`${model} with this ${field.replace(/_/g, ' ')} already exists.`] });

/** Same request fields (a retry), compared as JSON. */
const sameRequest = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/**
 * A registration whose stream already holds its record: the same request again (a client retrying after a lost
 * answer) gets that record back and writes nothing; another request under the same key is refused.
 */
function repeated(
  events: readonly StoredEvent[],
  request: unknown,
  refusal: () => Error,
  body: (events: readonly StoredEvent[]) => unknown = foldRecord,
): Decision | undefined {
  if (events.length === 0) return undefined;
  if (!sameRequest((events[0]!.data as { request?: unknown }).request, request)) throw refusal();
  return { appends: [], answer: { status: 201, body: body(events) } };
}

// ---- bodies (testbed-facts §3) --------------------------------------------------------------------

const AGENT_HEARTBEAT: FieldSpecs = {
  instance_name: { kind: 'str', required: true, maxLength: 100 },
  agent_type: { kind: 'str', required: true, maxLength: 20 },
  status: { kind: 'choice', choices: AGENT_STATUSES },
  description: { kind: 'str', nullable: true, maxLength: 10_000 },
  mq_connected: { kind: 'bool', nullable: true },
  pid: { kind: 'int', nullable: true, min: 0 },
  hostname: { kind: 'str', nullable: true, maxLength: 255 },
  operational_state: { kind: 'choice', choices: OPERATIONAL_STATES },
  namespace: { kind: 'str', nullable: true, maxLength: 100 },
  agent_url: { kind: 'str', nullable: true, maxLength: 200 },
  workflow_enabled: { kind: 'bool' },
  current_stf_count: { kind: 'int', min: 0 },
  total_stf_processed: { kind: 'int', min: 0 },
  last_stf_processed: { kind: 'datetime', nullable: true },
  metadata: { kind: 'json', nullable: true },
};

const SUBSCRIBER: FieldSpecs = {
  subscriber_name: { kind: 'str', required: true, maxLength: 255 },
  description: { kind: 'str', nullable: true, maxLength: 10_000 },
  is_active: { kind: 'bool' },
  fraction: { kind: 'float', nullable: true },
};

const LOG: FieldSpecs = {
  app_name: { kind: 'str', required: true, maxLength: 100 },
  instance_name: { kind: 'str', required: true, maxLength: 100 },
  timestamp: { kind: 'datetime', required: true },
  level: { kind: 'int', required: true, min: 0 },
  levelname: { kind: 'str', required: true, maxLength: 50 },
  message: { kind: 'str', required: true, maxLength: 16_384 },
  module: { kind: 'str', required: true, maxLength: 255 },
  funcname: { kind: 'str', required: true, maxLength: 255 },
  lineno: { kind: 'int', required: true },
  process: { kind: 'int', required: true },
  thread: { kind: 'int', required: true },
  extra_data: { kind: 'json', nullable: true },
};

const NAMESPACE: FieldSpecs = {
  name: { kind: 'str', required: true, maxLength: 100 },
  owner: { kind: 'str', required: true, maxLength: 100 },
  description: { kind: 'str', nullable: true, maxLength: 10_000 },
};

const DEFINITION: FieldSpecs = {
  workflow_name: { kind: 'str', required: true, maxLength: 200 },
  version: { kind: 'str', required: true, maxLength: 50 },
  workflow_type: { kind: 'str', required: true, maxLength: 100 },
  definition: { kind: 'str', required: true, maxLength: 500_000 },
  parameter_values: { kind: 'json', nullable: true },
  created_by: { kind: 'str', required: true, maxLength: 100 },
  created_at: { kind: 'datetime' },
};

const EXECUTION_STATUS = ['pending', 'running', 'completed', 'failed', 'terminated'] as const;
const EXECUTION: FieldSpecs = {
  execution_id: { kind: 'str', required: true, maxLength: 100 },
  workflow_definition: { kind: 'int', required: true, min: 1 },
  namespace: { kind: 'str', nullable: true, maxLength: 100 },
  parameter_values: { kind: 'json', nullable: true },
  performance_metrics: { kind: 'json', nullable: true },
  status: { kind: 'choice', choices: EXECUTION_STATUS },
  start_time: { kind: 'datetime', required: true },
  end_time: { kind: 'datetime', nullable: true },
  executed_by: { kind: 'str', required: true, maxLength: 100 },
};

const RUN: FieldSpecs = {
  run_number: { kind: 'int', required: true, min: 0 },
  start_time: { kind: 'datetime', required: true },
  end_time: { kind: 'datetime', nullable: true },
  run_conditions: { kind: 'json', nullable: true },
};

const COUNT = { kind: 'int', min: 0 } as const;
const RUN_STATE: FieldSpecs = {
  run_number: { kind: 'int', required: true, min: 0 },
  phase: { kind: 'str', required: true, maxLength: 20 },
  state: { kind: 'str', required: true, maxLength: 20 },
  substate: { kind: 'str', nullable: true, maxLength: 20 },
  target_worker_count: { kind: 'int', required: true, min: 0 },
  active_worker_count: COUNT,
  stf_samples_received: COUNT,
  slices_created: COUNT,
  slices_queued: COUNT,
  slices_processing: COUNT,
  slices_completed: COUNT,
  slices_failed: COUNT,
  state_changed_at: { kind: 'datetime', required: true },
  metadata: { kind: 'json', nullable: true },
};

const STF_FILE: FieldSpecs = {
  run: { kind: 'int', required: true, min: 1 },
  machine_state: { kind: 'str', maxLength: 64 },
  stf_filename: { kind: 'str', required: true, maxLength: 255 },
  file_size_bytes: { kind: 'int', nullable: true, min: 0 },
  checksum: { kind: 'str', nullable: true, maxLength: 64 },
  status: { kind: 'choice', choices: FILE_STATUSES },
  metadata: { kind: 'json', nullable: true },
  workflow_id: { kind: 'str', nullable: true, maxLength: 36 },
  daq_state: { kind: 'str', nullable: true, maxLength: 20 },
  daq_substate: { kind: 'str', nullable: true, maxLength: 20 },
  workflow_status: { kind: 'str', nullable: true, maxLength: 30 },
  tf_count: { kind: 'int', nullable: true, min: 0 },
};

const SAMPLE: FieldSpecs = {
  stf_file: { kind: 'str', required: true, maxLength: 255 },
  tf_filename: { kind: 'str', required: true, maxLength: 255 },
  file_size_bytes: { kind: 'int', nullable: true, min: 0 },
  checksum: { kind: 'str', nullable: true, maxLength: 64 },
  status: { kind: 'choice', choices: FILE_STATUSES },
  metadata: { kind: 'json', nullable: true },
  tf_count: { kind: 'int', nullable: true, min: 0 },
  tf_first: { kind: 'int', nullable: true, min: 0 },
  tf_last: { kind: 'int', nullable: true, min: 0 },
};

const SLICE: FieldSpecs = {
  fastmon_file: { kind: 'str', maxLength: 255 },
  // The real agent's flat fields (testbed-facts §10.2): the slice's own file name and its STF.
  tf_filename: { kind: 'str', maxLength: 255 },
  stf_filename: { kind: 'str', maxLength: 255 },
  slice_id: { kind: 'int', required: true, min: 0 },
  tf_first: { kind: 'int', required: true, min: 0 },
  tf_last: { kind: 'int', required: true, min: 0 },
  tf_count: { kind: 'int', required: true, min: 0 },
  run_number: { kind: 'int', required: true, min: 0 },
  status: { kind: 'str', maxLength: 20 },
  retries: { kind: 'int', min: 0 },
  metadata: { kind: 'json', nullable: true },
  assigned_worker: { kind: 'str', nullable: true, maxLength: 255 },
  assigned_at: { kind: 'datetime', nullable: true },
  completed_at: { kind: 'datetime', nullable: true },
};
/** What a PATCH may change: the keys of a slice are fixed once it exists. */
const SLICE_PATCH: FieldSpecs = Object.fromEntries(
  Object.entries(SLICE).filter(([k]) => !['fastmon_file', 'tf_filename', 'stf_filename', 'slice_id'].includes(k)),
);

const STATE_EVENT: FieldSpecs = {
  timestamp: { kind: 'datetime', required: true },
  run_number: { kind: 'int', required: true, min: 0 },
  event_type: { kind: 'str', required: true, maxLength: 50 },
  state: { kind: 'str', required: true, maxLength: 50 },
  substate: { kind: 'str', nullable: true, maxLength: 50 },
  event_data: { kind: 'json', nullable: true },
};

// ---- the service ----------------------------------------------------------------------------------

interface Decision {
  appends: StreamAppend[];
  /** The answer, or how to make it from the log position of the last event appended (an id some records take). */
  answer: ApiAnswer | ((position: bigint) => ApiAnswer);
}

export class TestbedApi {
  private readonly store: EventStore;
  private readonly namespace: string;
  private readonly now: () => Date;
  private readonly durability: Durability | undefined;

  constructor(options: TestbedApiOptions) {
    this.store = options.store;
    this.namespace = options.namespace;
    this.now = options.now ?? (() => new Date());
    this.durability = options.durability;
  }

  /**
   * The records this process wrote last, with their stream's revision then: a PATCH lays its changes over one
   * without reading the stream, and appends expecting that revision, so a write by anyone else in between (another
   * monitor on the same store) is a conflict, after which the stream is read. Forgotten on any failed append.
   */
  private readonly known = new BoundedMap<string, { revision: bigint; record: RecordFields }>(MAX_CACHED);
  /**
   * Facts that never change once in the log: the run number a run id names, a TF sample's record, the run of an STF
   * file, the stream and run of a slice id. Only what was found is kept: a missing parent is read again.
   */
  private readonly facts = new BoundedMap<string, unknown>(MAX_CACHED);

  private remember(a: StreamAppend, revision: bigint): void {
    if (a.expectedRevision === 'any' || a.expectedRevision === undefined) return;
    const record = (a.events.at(-1)?.data as { record?: RecordFields } | undefined)?.record;
    if (record !== undefined) this.known.set(a.stream, { revision, record });
  }

  /** A fact from the cache, or found by `find` (and cached when found). */
  private async fact<T>(key: string, find: () => Promise<T | undefined>): Promise<T | undefined> {
    const cached = this.facts.get(key) as T | undefined;
    if (cached !== undefined) return cached;
    const found = await find();
    if (found !== undefined) this.facts.set(key, found);
    return found;
  }

  /** After a commit: resolves once it is durable. */
  private settle(): Promise<void> {
    if (this.durability === undefined) return Promise.resolve();
    this.durability.committed();
    return this.durability.settle();
  }

  private event(type: TestbedEventType, data: Record<string, unknown>, meta: Record<string, unknown> = {}): NewEvent {
    return {
      type,
      data,
      metadata: { schemaVersion: 1, source: 'testbed-rest', namespace: this.namespace, ...meta },
    };
  }

  /**
   * Read, decide, append: `decide` reads what it needs and returns the appends (each with its expected revision)
   * and the answer; a conflict (another writer got there first) runs it again on the new state. `attempt` is 0 the
   * first time: a decision may then trust what this process knows (a new key, a record it wrote last) instead of
   * reading, since the expected revision of its append checks exactly that; after a conflict it reads.
   */
  private async handle(decide: (attempt: number) => Promise<Decision>): Promise<ApiAnswer> {
    for (let attempt = 0; ; attempt++) {
      const d = await decide(attempt);
      if (d.appends.length === 0) {
        if (typeof d.answer === 'function')
          throw new Error('a decision without appends has no position to answer with');
        // What it answers with (a record a retry finds) may have been committed by a request still waiting for its
        // fsync: it is acknowledged only once that is on disk too.
        await this.durability?.settle();
        return d.answer;
      }
      try {
        await this.durability?.ready();
        let results: AppendResult[];
        if (d.appends.length === 1) {
          const a = d.appends[0]!;
          results = [
            await this.store.appendToStream(a.stream, a.events, { expectedRevision: a.expectedRevision ?? 'any' }),
          ];
        } else {
          results = (await this.store.commit(d.appends)).appends;
        }
        d.appends.forEach((a, i) => this.remember(a, results[i]!.nextRevision));
        await this.settle();
        return typeof d.answer === 'function' ? d.answer(results.at(-1)!.position) : d.answer;
      } catch (e: unknown) {
        for (const a of d.appends) this.known.delete(a.stream);
        if (!isExpectedVersionConflict(e) || attempt >= MAX_RETRIES) throw e;
      }
    }
  }

  /** A counter: the next value is the stream's next revision (+ `base`); many processes share it race-free. */
  private counter(
    stream: string,
    type: TestbedEventType,
    make: (value: number) => Record<string, unknown>,
    answer: (value: number) => unknown,
    base = 1,
  ): Promise<ApiAnswer> {
    return this.handle(async () => {
      const head = await headOf(this.store, stream);
      const value = Number(head === undefined ? 0n : head + 1n) + base;
      return {
        appends: [{ stream, events: [this.event(type, make(value))], expectedRevision: expectedOf(head) }],
        answer: { status: 200, body: answer(value) },
      };
    });
  }

  nextAgentId(): Promise<ApiAnswer> {
    return this.counter(
      COUNTER_STREAMS.agentIds,
      'TestbedAgentIdAllocated',
      (agent_id) => ({ agent_id, allocated_at: this.now().toISOString() }),
      (agent_id) => ({ agent_id, status: 'success' }),
    );
  }

  /** Shares `swf-run-numbers` with the DAQ simulator: run number = 100010 + revision. */
  nextRunNumber(): Promise<ApiAnswer> {
    return this.counter(
      COUNTER_STREAMS.runNumbers,
      'TestbedRunNumberAllocated',
      (run_number) => ({ run_number, allocated_at: this.now().toISOString() }),
      (run_number) => ({ run_number, status: 'success' }),
      FIRST_RUN_NUMBER,
    );
  }

  /** Shares `swf-execution-ids` with the DAQ simulator: sequence = revision + 1. */
  nextExecutionSequence(body: unknown): Promise<ApiAnswer> {
    const b = checkFields(body ?? {}, { workflow_name: { kind: 'str', maxLength: 200 } });
    return this.counter(
      COUNTER_STREAMS.executionIds,
      'TestbedExecutionSequenceAllocated',
      (sequence) => ({
        sequence,
        workflow_name: b.workflow_name ?? null,
        allocated_at: this.now().toISOString(),
      }),
      (sequence) => ({ sequence, status: 'success' }),
    );
  }

  /** update_or_create by instance name: 201 the first time, 200 after. Stored as our agents' own heartbeat. */
  heartbeat(body: unknown): Promise<ApiAnswer> {
    const b = checkFields(body, AGENT_HEARTBEAT);
    const name = b.instance_name as string;
    const stream = recordStreams.agent(name);
    return this.handle(async () => {
      const head = await headOf(this.store, stream);
      const now = this.now().toISOString();
      const namespace = typeof b.namespace === 'string' && b.namespace !== '' ? b.namespace : this.namespace;
      const { description, ...rest } = b;
      const message = {
        ...rest,
        msg_type: 'agent_heartbeat' as const,
        instance_name: name,
        agent_type: b.agent_type as string,
        status: (b.status as (typeof AGENT_STATUSES)[number] | undefined) ?? 'OK',
        operational_state: (b.operational_state as (typeof OPERATIONAL_STATES)[number] | undefined) ?? 'STARTING',
        namespace,
        pid: typeof b.pid === 'number' ? b.pid : 0,
        hostname: typeof b.hostname === 'string' && b.hostname !== '' ? b.hostname : 'unknown',
        sender: name,
        created_at: now,
        execution_id: null,
        run_id: null,
        ...(typeof description === 'string' ? { description } : {}),
      };
      const e = messageEvent(message, { id: randomUUID() });
      const record = {
        instance_name: name,
        agent_type: message.agent_type,
        description: b.description ?? '',
        status: message.status,
        last_heartbeat: now,
        agent_url: b.agent_url ?? null,
        workflow_enabled: b.workflow_enabled ?? true,
        current_stf_count: b.current_stf_count ?? 0,
        total_stf_processed: b.total_stf_processed ?? 0,
        last_stf_processed: b.last_stf_processed ?? null,
        pid: b.pid ?? null,
        hostname: b.hostname ?? null,
        operational_state: message.operational_state,
        namespace,
        metadata: b.metadata ?? null,
        updated_at: now,
      };
      return {
        appends: [
          {
            stream,
            events: [{ ...e, metadata: { ...e.metadata, source: 'testbed-rest' } }],
            expectedRevision: expectedOf(head),
          },
        ],
        answer: { status: head === undefined ? 201 : 200, body: record },
      };
    });
  }

  registerSubscriber(body: unknown): Promise<ApiAnswer> {
    const b = checkFields(body, SUBSCRIBER);
    const stream = COUNTER_STREAMS.subscribers;
    return this.handle(async () => {
      const events = await readEvents(this.store, stream);
      const existing = events
        .map((e) => e.data as { record?: RecordFields; request?: unknown })
        .find((d) => d.record?.subscriber_name === b.subscriber_name);
      if (existing) {
        if (sameRequest(existing.request, b)) return { appends: [], answer: { status: 201, body: existing.record } };
        throw unique('subscriber_name', 'subscriber');
      }
      const now = this.now().toISOString();
      const record = {
        id: events.length + 1,
        subscriber_name: b.subscriber_name,
        description: b.description ?? null,
        is_active: b.is_active ?? true,
        fraction: b.fraction ?? null,
        created_at: now,
        updated_at: now,
      };
      return {
        appends: [
          {
            stream,
            events: [this.event('SubscriberRegistered', { record, request: b })],
            expectedRevision: expectedOf(events.at(-1)?.revision),
          },
        ],
        answer: { status: 201, body: record },
      };
    });
  }

  /** `/api/logs/` is open (AllowAny) in the testbed: any number of writers append to one stream. */
  async appendLog(body: unknown): Promise<ApiAnswer> {
    const b = checkFields(body, LOG);
    const now = this.now().toISOString();
    const extra = isRecord(b.extra_data) ? b.extra_data : {};
    const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
    const runId = typeof extra.run_id === 'string' && /^\d{1,15}$/.test(extra.run_id) ? extra.run_id : undefined;
    const message = {
      ...b,
      msg_type: 'agent_log' as const,
      instance_name: b.instance_name as string,
      level: Math.min(50, b.level as number),
      levelname: b.levelname as string,
      message: b.message as string,
      sender: b.instance_name as string,
      namespace: str(extra.namespace) ?? this.namespace,
      // The log's clock is the receive time: the agents' timestamps are naive local time (testbed-facts §10.25).
      created_at: now,
      execution_id: str(extra.execution_id) ?? null,
      run_id: runId ?? null,
    };
    const e = messageEvent(message, { id: randomUUID() });
    await this.durability?.ready();
    const r = await this.store.appendToStream(
      COUNTER_STREAMS.logs,
      [{ ...e, metadata: { ...e.metadata, source: 'testbed-rest' } }],
      { expectedRevision: 'any' },
    );
    await this.settle();
    return { status: 201, body: { id: Number(r.nextRevision) + 1, ...b } };
  }

  ensureNamespace(body: unknown): Promise<ApiAnswer> {
    const b = checkFields(body, NAMESPACE);
    const stream = recordStreams.namespace(b.name as string);
    return this.handle(async () => {
      const events = await readEvents(this.store, stream);
      const record = foldRecord(events);
      if (record)
        return { appends: [], answer: { status: 200, body: { ...record, created: false, status: 'success' } } };
      const now = this.now().toISOString();
      const created = {
        name: b.name,
        owner: b.owner,
        description: b.description ?? '',
        created_at: now,
        updated_at: now,
      };
      return {
        appends: [
          {
            stream,
            events: [this.event('NamespaceEnsured', { record: created }, { namespace: b.name })],
            expectedRevision: 'no_stream',
          },
        ],
        answer: {
          status: 200,
          body: { name: b.name, owner: b.owner, description: created.description, created: true, status: 'success' },
        },
      };
    });
  }

  registerDefinition(body: unknown): Promise<ApiAnswer> {
    const b = checkFields(body, DEFINITION);
    const stream = recordStreams.definition(b.workflow_name as string, b.version as string);
    return this.handle(async () => {
      const events = await readEvents(this.store, stream);
      const again = repeated(
        events,
        b,
        () =>
          new FieldValidationError({
            non_field_errors: ['The fields workflow_name, version must make a unique set.'],
          }),
      );
      if (again) return again;
      const head = await headOf(this.store, COUNTER_STREAMS.definitionIds);
      const id = Number(head === undefined ? 0n : head + 1n) + 1;
      const now = this.now().toISOString();
      const record = {
        id,
        workflow_name: b.workflow_name,
        version: b.version,
        workflow_type: b.workflow_type,
        definition: b.definition,
        parameter_values: b.parameter_values ?? null,
        created_by: b.created_by,
        created_at: b.created_at ?? now,
        updated_at: now,
      };
      return {
        appends: [
          {
            stream: COUNTER_STREAMS.definitionIds,
            events: [this.event('TestbedDefinitionIdAllocated', { id, stream })],
            expectedRevision: expectedOf(head),
          },
          {
            stream,
            events: [this.event('WorkflowDefinitionRegistered', { record, request: b })],
            expectedRevision: 'no_stream',
          },
        ],
        answer: { status: 201, body: record },
      };
    });
  }

  registerExecution(body: unknown): Promise<ApiAnswer> {
    const b = checkFields(body, EXECUTION);
    const id = b.execution_id as string;
    const stream = recordStreams.execution(id);
    return this.handle(async () => {
      const events = await readEvents(this.store, stream);
      const again = repeated(events, b, () => unique('execution_id', 'workflow execution'));
      if (again) return again;
      const definitionAt = await atRevision(
        this.store,
        COUNTER_STREAMS.definitionIds,
        BigInt((b.workflow_definition as number) - 1),
      );
      const definitionStream = (definitionAt?.data as { stream?: unknown } | undefined)?.stream;
      const definition =
        typeof definitionStream === 'string' ? foldRecord(await readEvents(this.store, definitionStream)) : undefined;
      if (!definition)
        throw new FieldValidationError({
          workflow_definition: [`Invalid pk "${String(b.workflow_definition)}" - object does not exist.`],
        });
      const record = {
        execution_id: id,
        workflow_definition: b.workflow_definition,
        workflow_name: definition.workflow_name,
        namespace: b.namespace ?? null,
        parameter_values: b.parameter_values ?? null,
        performance_metrics: b.performance_metrics ?? null,
        status: b.status ?? 'pending',
        start_time: b.start_time,
        end_time: b.end_time ?? null,
        executed_by: b.executed_by,
      };
      const ns = typeof b.namespace === 'string' && b.namespace !== '' ? b.namespace : this.namespace;
      return {
        appends: [
          {
            stream,
            events: [
              this.event('WorkflowExecutionRegistered', { record, request: b }, { namespace: ns, executionId: id }),
            ],
            expectedRevision: 'no_stream',
          },
        ],
        answer: { status: 201, body: record },
      };
    });
  }

  updateExecution(id: string, body: unknown): Promise<ApiAnswer> {
    const spec = { ...EXECUTION };
    delete spec.execution_id;
    const changes = checkFields(body, spec, { partial: true });
    return this.update(recordStreams.execution(id), 'WorkflowExecutionUpdated', { execution_id: id }, changes, {
      executionId: id,
    });
  }

  /** A PATCH: the record as it stands, with `changes` laid over it. */
  private update(
    stream: string,
    type: TestbedEventType,
    key: Record<string, unknown>,
    changes: RecordFields,
    meta: Record<string, unknown> = {},
    stamp?: (now: string) => RecordFields,
  ): Promise<ApiAnswer> {
    const changing = Object.keys(changes).length > 0;
    return this.handle(async (attempt) => {
      // A change may start from the record this process wrote last (its append expects that revision); an answer
      // without a change reads what is there.
      const cached = attempt === 0 && changing ? this.known.get(stream) : undefined;
      let record: RecordFields | undefined;
      let revision: bigint | undefined;
      if (cached) ({ record, revision } = cached);
      else {
        const events = await readEvents(this.store, stream);
        record = foldRecord(events);
        revision = events.at(-1)?.revision;
      }
      if (!record || revision === undefined) throw notFound();
      // DRF ignores fields it does not know: a PATCH of none of its fields changes nothing, so nothing is written.
      if (!changing) return { appends: [], answer: { status: 200, body: { ...record, ...key } } };
      const all = { ...changes, ...(stamp ? stamp(this.now().toISOString()) : {}) };
      // The record after the change travels with it: the projection needs no read to fold it.
      const after = { ...record, ...key, ...all };
      return {
        appends: [
          {
            stream,
            events: [this.event(type, { ...key, changes: all, record: after }, meta)],
            expectedRevision: revision,
          },
        ],
        answer: { status: 200, body: after },
      };
    });
  }

  /** Runs have an AutoField primary key (`run_id`) apart from the unique run number (testbed-facts §3.2). */
  registerRun(body: unknown): Promise<ApiAnswer> {
    const b = checkFields(body, RUN);
    const runNumber = b.run_number as number;
    const stream = recordStreams.run(runNumber);
    return this.handle(async () => {
      const events = await readEvents(this.store, stream);
      const again = repeated(events, b, () => unique('run_number', 'run'));
      if (again) return again;
      const head = await headOf(this.store, COUNTER_STREAMS.runIds);
      const runId = Number(head === undefined ? 0n : head + 1n) + 1;
      const record = {
        run_id: runId,
        run_number: runNumber,
        start_time: b.start_time,
        end_time: b.end_time ?? null,
        run_conditions: b.run_conditions ?? null,
      };
      return {
        appends: [
          {
            stream: COUNTER_STREAMS.runIds,
            events: [this.event('TestbedRunIdAllocated', { run_id: runId, run_number: runNumber }, { runNumber })],
            expectedRevision: expectedOf(head),
          },
          {
            stream,
            events: [this.event('RunRegistered', { record, request: b }, { runNumber })],
            expectedRevision: 'no_stream',
          },
        ],
        answer: { status: 201, body: record },
      };
    });
  }

  /** The run number a Run primary key names, from the id counter (id = revision + 1). */
  private async runNumberOfPk(pk: number): Promise<number> {
    if (!Number.isSafeInteger(pk) || pk < 1) throw notFound();
    const n = await this.fact(`run-id:${pk}`, async () => {
      const e = await atRevision(this.store, COUNTER_STREAMS.runIds, BigInt(pk - 1));
      const v = (e?.data as { run_number?: unknown } | undefined)?.run_number;
      return typeof v === 'number' ? v : undefined;
    });
    if (n === undefined) throw notFound();
    return n;
  }

  async updateRun(pk: number, body: unknown): Promise<ApiAnswer> {
    const spec = { ...RUN };
    delete spec.run_number;
    const changes = checkFields(body, spec, { partial: true });
    const runNumber = await this.runNumberOfPk(pk);
    return this.update(recordStreams.run(runNumber), 'RunUpdated', { run_id: pk, run_number: runNumber }, changes, {
      runNumber,
    });
  }

  /** What an agent reports as a run's RunState: kept as reported, beside what swf-es derives from the messages. */
  reportRunState(body: unknown): Promise<ApiAnswer> {
    const b = checkFields(body, RUN_STATE);
    const runNumber = b.run_number as number;
    const stream = recordStreams.runState(runNumber);
    return this.handle(async (attempt) => {
      // New until the append (expecting no stream) says otherwise: a retry of an existing one conflicts, then reads.
      const events = attempt === 0 ? [] : await readEvents(this.store, stream);
      const again = repeated(events, b, () => unique('run_number', 'run state'));
      if (again) return again;
      const now = this.now().toISOString();
      const record = {
        run_number: runNumber,
        phase: b.phase,
        state: b.state,
        substate: b.substate ?? null,
        target_worker_count: b.target_worker_count,
        active_worker_count: b.active_worker_count ?? 0,
        stf_samples_received: b.stf_samples_received ?? 0,
        slices_created: b.slices_created ?? 0,
        slices_queued: b.slices_queued ?? 0,
        slices_processing: b.slices_processing ?? 0,
        slices_completed: b.slices_completed ?? 0,
        slices_failed: b.slices_failed ?? 0,
        state_changed_at: b.state_changed_at,
        updated_at: now,
        metadata: b.metadata ?? null,
      };
      const executionId =
        isRecord(b.metadata) && typeof b.metadata.execution_id === 'string' ? b.metadata.execution_id : undefined;
      return {
        appends: [
          {
            stream,
            events: [
              this.event(
                'RunStateReported',
                { record, request: b },
                { runNumber, ...(executionId ? { executionId } : {}) },
              ),
            ],
            expectedRevision: 'no_stream',
          },
        ],
        answer: { status: 201, body: record },
      };
    });
  }

  updateRunState(runNumber: number, body: unknown): Promise<ApiAnswer> {
    const spec = { ...RUN_STATE };
    delete spec.run_number;
    const changes = checkFields(body, spec, { partial: true });
    return this.update(
      recordStreams.runState(runNumber),
      'RunStateUpdateReported',
      { run_number: runNumber },
      changes,
      { runNumber },
      (now) => ({ updated_at: now }),
    );
  }

  /** The Run is named by its primary key (`run`), as the data agent sends it. */
  registerStfFile(body: unknown): Promise<ApiAnswer> {
    const b = checkFields(body, STF_FILE);
    const filename = b.stf_filename as string;
    const fileId = stfFileId(filename);
    const stream = recordStreams.stf(fileId);
    return this.handle(async (attempt) => {
      // New until the append (expecting no stream) says otherwise: a retry of an existing one conflicts, then reads.
      const events = attempt === 0 ? [] : await readEvents(this.store, stream);
      const again = repeated(events, b, () => unique('stf_filename', 'stf file'));
      if (again) return again;
      let runNumber: number;
      try {
        runNumber = await this.runNumberOfPk(b.run as number);
      } catch (e: unknown) {
        if (!isNotFoundError(e)) throw e;
        throw new FieldValidationError({ run: [`Invalid pk "${String(b.run)}" - object does not exist.`] });
      }
      const now = this.now().toISOString();
      const record = {
        file_id: fileId,
        run: b.run,
        run_number: runNumber,
        machine_state: b.machine_state ?? 'physics',
        stf_filename: filename,
        file_size_bytes: b.file_size_bytes ?? null,
        checksum: b.checksum ?? null,
        created_at: now,
        status: b.status ?? 'registered',
        metadata: b.metadata ?? null,
        workflow_id: b.workflow_id ?? null,
        daq_state: b.daq_state ?? null,
        daq_substate: b.daq_substate ?? null,
        workflow_status: b.workflow_status ?? null,
        tf_count: b.tf_count ?? null,
      };
      return {
        appends: [
          {
            stream,
            events: [this.event('StfFileRegistered', { record, request: b }, { runNumber })],
            expectedRevision: 'no_stream',
          },
        ],
        answer: { status: 201, body: record },
      };
    });
  }

  updateStfFile(fileId: string, body: unknown): Promise<ApiAnswer> {
    const spec = { ...STF_FILE };
    delete spec.stf_filename;
    delete spec.run;
    const changes = checkFields(body, spec, { partial: true });
    if (!/^[0-9a-f-]{36}$/i.test(fileId)) return Promise.reject(notFound());
    return this.update(
      recordStreams.stf(fileId.toLowerCase()),
      'StfFileUpdated',
      { file_id: fileId.toLowerCase() },
      changes,
    );
  }

  /** Its answer is what the FastMon agent broadcasts as `tf_file_registered`: the serializer's fields exactly. */
  registerSample(body: unknown): Promise<ApiAnswer> {
    const b = checkFields(body, SAMPLE);
    const filename = b.tf_filename as string;
    const id = tfFileId(filename);
    const stream = recordStreams.sample(id);
    return this.handle(async (attempt) => {
      // New until the append (expecting no stream) says otherwise: a retry of an existing one conflicts, then reads.
      const events = attempt === 0 ? [] : await readEvents(this.store, stream);
      const again = repeated(events, b, () => unique('tf_filename', 'fast mon file'));
      if (again) return again;
      const stfRun = await this.fact(`stf-run:${String(b.stf_file)}`, async () => {
        const stf = foldRecord(await readEvents(this.store, recordStreams.stf(stfFileId(b.stf_file as string))));
        return stf === undefined ? undefined : (stf.run_number as number);
      });
      if (stfRun === undefined)
        throw new FieldValidationError({
          stf_file: [`Object with stf_filename=${String(b.stf_file)} does not exist.`],
        });
      const now = this.now().toISOString();
      const record = {
        tf_file_id: id,
        stf_file: b.stf_file,
        tf_filename: filename,
        file_size_bytes: b.file_size_bytes ?? null,
        checksum: b.checksum ?? null,
        status: b.status ?? 'registered',
        metadata: b.metadata ?? null,
        created_at: now,
        updated_at: now,
        tf_count: b.tf_count ?? null,
        tf_first: b.tf_first ?? null,
        tf_last: b.tf_last ?? null,
      };
      const runNumber = stfRun;
      return {
        appends: [
          {
            stream,
            events: [this.event('TfSampleRegistered', { record, run_number: runNumber, request: b }, { runNumber })],
            expectedRevision: 'no_stream',
          },
        ],
        answer: { status: 201, body: record },
      };
    });
  }

  /**
   * Unique (fastmon_file, slice_id). The real fast processing agent posts `tf_filename` (the slice's file) and
   * `stf_filename` instead of `fastmon_file`; the sample is derived from the slice's file name.
   */
  registerSlice(body: unknown): Promise<ApiAnswer> {
    const b = checkFields(body, SLICE);
    let sample = typeof b.fastmon_file === 'string' && b.fastmon_file !== '' ? b.fastmon_file : undefined;
    if (sample === undefined && typeof b.tf_filename === 'string') sample = sampleOfSliceFile(b.tf_filename);
    if (sample === undefined)
      throw new FieldValidationError({
        fastmon_file: ['This field is required (or tf_filename naming the slice file, <sample>_slice_NNN.tf).'],
      });
    const sliceId = b.slice_id as number;
    const stream = recordStreams.slice(sample, sliceId);
    return this.handle(async (attempt) => {
      // New until the append (expecting no stream) says otherwise: a retry of an existing one conflicts, then reads.
      const events = attempt === 0 ? [] : await readEvents(this.store, stream);
      const again = repeated(
        events,
        b,
        () =>
          new FieldValidationError({
            non_field_errors: ['The fields fastmon_file, slice_id must make a unique set.'],
          }),
        (e) => ({ ...foldRecord(e), id: Number(e[0]!.position) }),
      );
      if (again) return again;
      const parent = await this.fact(`sample:${sample}`, async () =>
        foldRecord(await readEvents(this.store, recordStreams.sample(tfFileId(sample)))),
      );
      if (!parent)
        throw new FieldValidationError({ fastmon_file: [`Object with tf_filename=${sample} does not exist.`] });
      const now = this.now().toISOString();
      const runNumber = b.run_number as number;
      const sliceFile =
        typeof b.tf_filename === 'string' && b.tf_filename !== ''
          ? b.tf_filename
          : sample.replace(/(\.[A-Za-z0-9]+)$/, `_slice_${String(sliceId).padStart(3, '0')}$1`);
      const record = {
        fastmon_file: sample,
        slice_id: sliceId,
        tf_first: b.tf_first,
        tf_last: b.tf_last,
        tf_count: b.tf_count,
        run_number: runNumber,
        status: b.status ?? 'queued',
        retries: b.retries ?? 0,
        metadata: b.metadata ?? null,
        created_at: now,
        updated_at: now,
        assigned_worker: b.assigned_worker ?? null,
        assigned_at: b.assigned_at ?? null,
        completed_at: b.completed_at ?? null,
        tf_filename: sliceFile,
        stf_filename: b.stf_filename ?? parent.stf_file ?? null,
      };
      const executionId =
        isRecord(b.metadata) && typeof b.metadata.execution_id === 'string' ? b.metadata.execution_id : undefined;
      const meta = { runNumber, ...(executionId ? { executionId } : {}) };
      return {
        appends: [
          {
            stream,
            events: [this.event('TfSliceRegistered', { record, request: b }, meta)],
            expectedRevision: 'no_stream',
          },
        ],
        // A slice's id is the log position of its registration: unique, increasing, and found again in one read,
        // with no counter for concurrent registrations to contend on.
        answer: (position) => {
          this.facts.set(`slice-id:${position}`, { stream, runNumber });
          return { status: 201, body: { id: Number(position), ...record } };
        },
      };
    });
  }

  async updateSlice(id: number, body: unknown): Promise<ApiAnswer> {
    const changes = checkFields(body, SLICE_PATCH, { partial: true });
    if (!Number.isSafeInteger(id) || id < 1) throw notFound();
    const slice = await this.fact(`slice-id:${id}`, async () => {
      let e: StoredEvent | undefined;
      for await (const x of this.store.readAll({ from: BigInt(id), maxCount: 1 })) e = x;
      if (e?.type !== 'TfSliceRegistered' || e.position !== BigInt(id)) return undefined;
      return { stream: e.streamName, runNumber: (e.metadata as { runNumber?: unknown } | undefined)?.runNumber };
    });
    if (slice === undefined) throw notFound();
    const { stream, runNumber } = slice;
    return this.update(
      stream,
      'TfSliceStatusReported',
      { id },
      changes,
      typeof runNumber === 'number' ? { runNumber } : {},
      (now) => ({ updated_at: now }),
    );
  }

  /** Its `event_id` is the log position of its event, as a slice's id (no counter to contend on). */
  recordSystemStateEvent(body: unknown): Promise<ApiAnswer> {
    const b = checkFields(body, STATE_EVENT);
    const record = {
      timestamp: b.timestamp,
      run_number: b.run_number,
      event_type: b.event_type,
      state: b.state,
      substate: b.substate ?? null,
      event_data: b.event_data ?? null,
    };
    return this.handle(() =>
      Promise.resolve({
        appends: [
          {
            stream: COUNTER_STREAMS.systemStateEvents,
            events: [this.event('SystemStateEventRecorded', { record }, { runNumber: b.run_number })],
            expectedRevision: 'any',
          },
        ],
        answer: (position: bigint) => ({ status: 201, body: { event_id: Number(position), ...record } }),
      }),
    );
  }
}
