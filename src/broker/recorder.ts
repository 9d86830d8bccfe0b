/**
 * Inbound: one broker frame → the events to commit for it. Pure but for the memory of what it has recorded
 * (which execution a run belongs to, the slices a result can match), which `learn` rebuilds from the log when
 * the gateway starts.
 *
 * - The frame's event keeps the body as received, its type is the body's `msg_type`, its id is derived from the
 *   broker's `message-id` (a redelivered frame repeats the same commit: the store drops it).
 * - A frame that is not JSON, too large, or fails the testbed profile is a `BrokerMessageRejected` event with the
 *   raw body and the reason.
 * - What a recorded run needs to be a run comes with it, derived from the frame (ids derived from its id): the
 *   execution's `WorkflowExecutionStarted` on its first `run_imminent`; a `SliceProcessingStarted` before each
 *   `slice_result` matched to its slice (real transformers report nothing when they take a slice).
 */
import { createHash } from 'node:crypto';
import type { NewEvent, StoredEvent, StreamAppend } from '../eventStore/eventStore.js';
import { machineDefinitions, machineHash } from '../machines/index.js';
import {
  deriveId,
  parseTestbedBody,
  SCHEMA_VERSION,
  type SliceMatch,
  streams,
  testbedTimeToIso,
} from '../messages/index.js';

export interface InboundFrame {
  destination: string;
  headers: Record<string, string>;
  /** The body as UTF-8 text. */
  body: string;
  /** Its size in bytes as received. */
  bytes: number;
  receivedAt: Date;
}

export interface RecorderOptions {
  /** The testbed namespace this gateway serves; frames of another are recorded and marked. */
  namespace: string;
  maxBodyBytes: number;
  /** The lease a matched result's derived `SliceProcessingStarted` is given, in seconds per slice second. */
  leaseFactor: number;
  /**
   * The `parameter_values` of the executions the gateway announces (default: none but `max_slice_retries = 0`,
   * because the real fast processing agent never retries a slice, and in a recording nobody else will).
   */
  parameterValues?: Record<string, unknown>;
  /** The `swf-gateway` header this gateway puts on what it publishes: its own frames coming back are skipped. */
  gatewayId: string;
}

export type RecordDecision =
  | { kind: 'own'; eventId: string }
  | {
      kind: 'record';
      id: string;
      type: string;
      appends: StreamAppend[];
      rejected?: string;
      /** The namespace the frame belongs to, when it is not this gateway's. */
      foreign?: string;
    };

/** Headers on every frame the gateway publishes: which gateway, and the event it publishes. */
export const GATEWAY_HEADER = 'swf-gateway';
export const EVENT_ID_HEADER = 'swf-event-id';

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isBrokerRecordedMeta = (m: Record<string, unknown>): boolean => m.origin === 'broker';
const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const RUN = /^[0-9]{1,15}$/;

/** `broker-topic.panda.workers` for `/topic/panda.workers`: where frames that belong to no run are kept. */
export const brokerStream = (destination: string): string =>
  `broker-${destination.replace(/^\//, '').replace(/\//g, '.')}`.slice(0, 200);

/** The stream a recorded workflow message goes to: the one swf-es would write it to (messages/streams.ts). */
function streamOf(
  msgType: string,
  body: Record<string, unknown>,
  run: string | undefined,
  destination: string,
): string {
  if (run === undefined) return brokerStream(destination);
  switch (msgType) {
    case 'run_imminent':
    case 'start_run':
    case 'stf_gen':
    case 'pause_run':
    case 'resume_run':
      return streams.run(run);
    case 'end_run':
      return body.content !== undefined ? streams.fastproc(run) : streams.run(run);
    case 'stf_ready':
      return streams.data(run);
    case 'tf_file_registered':
      return streams.fastmon(run);
    case 'run_imminent_worker':
      return streams.fastproc(run);
    case 'slice':
      return streams.slices(run);
    case 'slice_result':
      return streams.results(run);
    default:
      return brokerStream(destination);
  }
}

interface SliceEntry extends SliceMatch {
  processingTime: number;
}

/**
 * A store event holds at most 1 MiB: a body larger than `RAW_BODY_KEPT` is kept as its first part, with its size and
 * sha256 (what a rejected frame is, and proof of what it was).
 */
export const RAW_BODY_KEPT = 65_536;

function rawBody(frame: InboundFrame): Record<string, unknown> {
  if (frame.body.length <= RAW_BODY_KEPT) return { raw_body: frame.body, body_bytes: frame.bytes };
  return {
    raw_body: frame.body.slice(0, RAW_BODY_KEPT),
    raw_body_truncated: true,
    body_bytes: frame.bytes,
    body_sha256: createHash('sha256').update(frame.body).digest('hex'),
  };
}

export class Recorder {
  private readonly executionOfRun = new Map<string, string>();
  private readonly startedExecutions = new Set<string>();
  /** run → slice `created_at` (as sent) → slice; also by slice file name. */
  private readonly slicesByStamp = new Map<string, Map<string, SliceEntry>>();
  private readonly slicesByName = new Map<string, SliceEntry>();
  private readonly processingTimeOfRun = new Map<string, number>();
  private readonly usedStamps = new Map<string, Set<string>>();
  private readonly stampOfSlice = new Map<string, string>();
  private workflowName: string | undefined;
  private readonly hash = machineHash(machineDefinitions());
  private readonly definitions = machineDefinitions();

  constructor(private readonly options: RecorderOptions) {}

  /** Takes in a stored event (recorded or written by swf-es agents), so matching works across restarts. */
  learn(e: Pick<StoredEvent, 'type' | 'data' | 'metadata'>): void {
    const d = isRecord(e.data) ? e.data : {};
    if (e.type === 'WorkflowExecutionStarted' && typeof d.execution_id === 'string') {
      this.startedExecutions.add(d.execution_id);
      return;
    }
    const meta = isRecord(e.metadata) ? e.metadata : {};
    const c = isRecord(d.content) ? d.content : {};
    const run = text(d.run_id) ?? text(c.run_id);
    const execution =
      text(d.execution_id) ??
      text(c.execution_id) ??
      text(meta.executionId) ??
      (run !== undefined ? this.executionOfRun.get(run) : undefined);
    if (run !== undefined && RUN.test(run) && execution !== undefined && !this.executionOfRun.has(run)) {
      this.executionOfRun.set(run, execution);
    }
    if (e.type === 'run_imminent_worker' && run !== undefined && typeof c.slice_processing_time === 'number') {
      this.processingTimeOfRun.set(run, c.slice_processing_time);
    }
    if (e.type === 'slice' && run !== undefined && execution !== undefined) {
      const name = text(c.tf_filename);
      const created = text(d.created_at);
      if (name === undefined || created === undefined || typeof c.slice_id !== 'number') return;
      // A recorded slice is matched by the stamp it was sent with; ours by the unique one the outbox sends.
      const attempt = typeof c.attempt === 'number' ? c.attempt : 1;
      const key = `${name}#${attempt}`;
      // A recorded slice is matched by the stamp it was sent with. Ours get a unique one; seen before (the
      // gateway reads the log at start, then follows it), the same one again.
      const stamp = isBrokerRecordedMeta(meta)
        ? created
        : (this.stampOfSlice.get(key) ?? this.uniqueStamp(run, created));
      this.stampOfSlice.set(key, stamp);
      const entry: SliceEntry = {
        run_id: run,
        execution_id: execution,
        tf_filename: name,
        fastmon_file: text(c.fastmon_file) ?? name.replace(/_slice_\d+(\.tf)$/, '$1'),
        slice_id: c.slice_id,
        attempt,
        processingTime:
          typeof c.slice_processing_time === 'number'
            ? c.slice_processing_time
            : (this.processingTimeOfRun.get(run) ?? 30),
      };
      let byStamp = this.slicesByStamp.get(run);
      if (!byStamp) this.slicesByStamp.set(run, (byStamp = new Map<string, SliceEntry>()));
      byStamp.set(stamp, entry);
      this.slicesByName.set(name, entry);
    }
  }

  /**
   * Slices an swf-es agent cut in one step share the clock's millisecond, but a real failed `slice_result` names
   * its slice only by `requested_at` (the slice's `created_at`): the outbox sends each slice of a run a stamp no
   * other slice of the run has, the stored one with sub-millisecond digits added where it is taken. Derived in
   * log order, so a restarted gateway derives the same stamps.
   */
  private uniqueStamp(run: string, created: string): string {
    let used = this.usedStamps.get(run);
    if (!used) this.usedStamps.set(run, (used = new Set<string>()));
    let stamp = created;
    const m = /^(.*\.\d{3})(Z)$/.exec(created);
    for (let k = 1; used.has(stamp); k++) {
      stamp = m ? `${m[1]}${String(k).padStart(3, '0')}${m[2]}` : `${created}#${k}`;
    }
    used.add(stamp);
    return stamp;
  }

  /** The `created_at` the outbox publishes a slice with (after `learn` saw it). */
  publishedStamp(tfFilename: string, attempt: number): string | undefined {
    return this.stampOfSlice.get(`${tfFilename}#${attempt}`);
  }

  /** The slice a result belongs to: by run and `requested_at` (= the slice's `created_at`), else by file name. */
  match(body: Record<string, unknown>): SliceEntry | undefined {
    const c = isRecord(body.content) ? body.content : {};
    const name = text(c.tf_filename);
    if (name !== undefined) {
      const byName = this.slicesByName.get(name);
      if (byName) return byName;
    }
    const stamp = text(c.requested_at);
    if (stamp === undefined) return undefined;
    const run = text(body.run_id);
    if (run !== undefined) return this.slicesByStamp.get(run)?.get(stamp);
    // A result without a run id: the stamp alone, when exactly one run has it.
    let found: SliceEntry | undefined;
    for (const byStamp of this.slicesByStamp.values()) {
      const hit = byStamp.get(stamp);
      if (hit && found) return undefined;
      found = hit ?? found;
    }
    return found;
  }

  decide(frame: InboundFrame): RecordDecision {
    const o = this.options;
    const ownEvent = frame.headers[EVENT_ID_HEADER];
    if (frame.headers[GATEWAY_HEADER] === o.gatewayId && ownEvent !== undefined)
      return { kind: 'own', eventId: ownEvent };
    const messageId = frame.headers['message-id'] ?? `${frame.destination}:${frame.headers.timestamp ?? ''}`;
    const id = deriveId('broker-frame', messageId);
    const receivedAt = frame.receivedAt.toISOString();
    const broker = { messageId, receivedAt, headers: frame.headers };
    const headerNs = text(frame.headers.namespace);

    const reject = (reason: string): RecordDecision => ({
      kind: 'record',
      id,
      type: 'BrokerMessageRejected',
      rejected: reason,
      appends: [
        {
          stream: brokerStream(frame.destination),
          expectedRevision: 'any',
          events: [
            {
              id,
              type: 'BrokerMessageRejected',
              data: {
                reason,
                destination: frame.destination,
                message_id: messageId,
                headers: frame.headers,
                ...rawBody(frame),
                received_at: receivedAt,
              },
              metadata: {
                schemaVersion: SCHEMA_VERSION,
                correlationId: id,
                causationId: id,
                destination: frame.destination,
                namespace: headerNs ?? o.namespace,
                origin: 'broker',
                broker,
              },
            },
          ],
        },
      ],
    });

    if (frame.bytes > o.maxBodyBytes) {
      return reject(`body of ${frame.bytes} bytes is larger than broker.max_body_bytes (${o.maxBodyBytes})`);
    }
    let body: unknown;
    try {
      body = JSON.parse(frame.body);
    } catch (e: unknown) {
      return reject(`body is not JSON: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (!isRecord(body)) return reject('body is not a JSON object');
    if (body.msg_type === undefined) return reject('body has no msg_type');
    const parsed = parseTestbedBody(body);
    if (!parsed.success) return reject(parsed.error.message);

    const msgType = parsed.message.msg_type;
    const content = isRecord(body.content) ? body.content : {};
    const namespace = text(body.namespace) ?? headerNs ?? o.namespace;
    const foreign = namespace !== o.namespace ? namespace : undefined;
    let run = text(body.run_id) ?? text(content.run_id);
    if (run !== undefined && !RUN.test(run)) run = undefined;

    const derived: StreamAppend[] = [];
    let match: SliceEntry | undefined;
    if (parsed.kind === 'workflow' && foreign === undefined) {
      if (msgType === 'slice_result') {
        match = this.match(body);
        if (match) run = match.run_id;
      }
      // Learn before deciding, so the slice this frame is (or the run it opens) is known to what follows.
      this.learn({ type: msgType, data: body, metadata: { origin: 'broker' } });
    }
    if (parsed.kind === 'control' && msgType === 'run_workflow' && typeof body.workflow_name === 'string') {
      this.workflowName = body.workflow_name;
    }
    const executionId =
      text(body.execution_id) ??
      text(content.execution_id) ??
      (run !== undefined ? this.executionOfRun.get(run) : undefined) ??
      match?.execution_id;

    const metadata = {
      schemaVersion: SCHEMA_VERSION,
      correlationId: id,
      causationId: id,
      destination: frame.destination,
      namespace,
      ...(executionId !== undefined ? { executionId } : {}),
      ...(run !== undefined ? { runNumber: Number(run) } : {}),
      origin: 'broker',
      broker,
      ...(foreign !== undefined ? { namespaceMismatch: { expected: o.namespace, got: foreign } } : {}),
      ...(match
        ? {
            match: {
              run_id: match.run_id,
              execution_id: match.execution_id,
              tf_filename: match.tf_filename,
              fastmon_file: match.fastmon_file,
              slice_id: match.slice_id,
              attempt: match.attempt,
            } satisfies SliceMatch,
          }
        : {}),
    };
    const event: NewEvent = { id, type: msgType, data: body, metadata };
    const events: NewEvent[] = [];

    if (parsed.kind === 'workflow' && foreign === undefined) {
      if (msgType === 'run_imminent' && executionId !== undefined && !this.startedExecutions.has(executionId)) {
        this.startedExecutions.add(executionId);
        derived.push(this.executionStarted(executionId, namespace, body, id, run));
      }
      if (msgType === 'slice_result' && match) {
        const startedAt =
          testbedTimeToIso(content.processing_start_at) ?? testbedTimeToIso(body.created_at) ?? receivedAt;
        const deadline = new Date(Date.parse(startedAt) + match.processingTime * o.leaseFactor * 1000).toISOString();
        const startedId = deriveId(id, 'SliceProcessingStarted');
        events.push({
          id: startedId,
          type: 'SliceProcessingStarted',
          data: {
            run_id: match.run_id,
            execution_id: match.execution_id,
            namespace,
            slice_id: match.slice_id,
            tf_filename: match.tf_filename,
            fastmon_file: match.fastmon_file,
            attempt: match.attempt,
            worker: text(content.hostname) ?? text(frame.headers['client-id']) ?? 'transformer',
            started_at: startedAt,
            lease_deadline: deadline,
          },
          metadata: {
            schemaVersion: SCHEMA_VERSION,
            correlationId: id,
            causationId: id,
            namespace,
            executionId: match.execution_id,
            runNumber: Number(match.run_id),
            derivedFrom: 'broker',
          },
        });
      }
    }
    events.push(event);
    return {
      kind: 'record',
      id,
      type: msgType,
      ...(foreign !== undefined ? { foreign } : {}),
      appends: [
        ...derived,
        { stream: streamOf(msgType, body, run, frame.destination), expectedRevision: 'any', events },
      ],
    };
  }

  private executionStarted(
    executionId: string,
    namespace: string,
    body: Record<string, unknown>,
    cause: string,
    run: string | undefined,
  ): StreamAppend {
    const id = deriveId('broker-execution', executionId);
    const workflowName = this.workflowName ?? executionId.replace(/-[^-]+-\d+$/, '');
    const startedAt =
      testbedTimeToIso(body.timestamp) ?? testbedTimeToIso(body.created_at) ?? new Date(0).toISOString();
    return {
      stream: streams.execution(executionId),
      expectedRevision: 'any',
      events: [
        {
          id,
          type: 'WorkflowExecutionStarted',
          data: {
            execution_id: executionId,
            workflow_name: workflowName,
            namespace,
            executed_by: text(body.sender) ?? 'testbed',
            // The real testbed's parameters are not on the wire (RecorderOptions.parameterValues). Agents read
            // them as a configuration, so the default is one: this namespace and workflow, no retries.
            parameter_values: this.options.parameterValues ?? {
              testbed: { namespace },
              workflow: { name: workflowName },
              fast_processing: { max_slice_retries: 0 },
            },
            machine_hash: this.hash,
            machine_definitions: this.definitions,
            start_time: startedAt,
            ...(run !== undefined ? { run_number: Number(run) } : {}),
          },
          metadata: {
            schemaVersion: SCHEMA_VERSION,
            correlationId: cause,
            causationId: cause,
            namespace,
            executionId,
            ...(run !== undefined ? { runNumber: Number(run) } : {}),
            derivedFrom: 'broker',
          },
        },
      ],
    };
  }
}
