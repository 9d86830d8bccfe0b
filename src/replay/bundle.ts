/**
 * Run bundles: a run's events as NDJSON, to carry a run from one store to another (SQLite ↔ EventStoreDB).
 *
 * Line 1 is the header `{"format":"swf-es-run-bundle","version":1,run_number,execution_id,namespace,machine_hash,events}`;
 * then one event a line, in log order: `{id, streamName, type, data, metadata, revision, position, recordedAt}`.
 * The bundle holds the run's events (see runEvents.ts), its execution stream (the configuration
 * `parameter_values` and the `machine_definitions`), the counter events that allocated its number and execution
 * id, and the agents' heartbeats and logs that carry its execution id.
 *
 * Import validates the whole file first, then writes every stream with expected revision `no_stream` in one
 * `commit`, so a failure stores nothing. The counters are written so the target's next allocations come after
 * the imported run (numbers skipped on the way are recorded as reserved by the import).
 */
import { ConcurrencyError, isExpectedVersionConflict, isNotFoundError, ValidationError } from '../errors.js';
import { lastRevision } from '../eventStore/streamState.js';
import {
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
  type StoredEvent,
  type StreamAppend,
} from '../eventStore/eventStore.js';
import { FIRST_RUN_NUMBER } from '../messages/streams.js';
import {
  deriveId,
  domainEvent,
  EXECUTION_IDS_STREAM,
  LEGACY_WORKER_PREFIX,
  parseEvent,
  RUN_NUMBERS_STREAM,
  STREAM_PREFIXES,
  streams,
} from '../messages/index.js';
import { counterEvents, locateRun, readRunEvents, type RunEventsOptions, type RunInfo } from './runEvents.js';

export const BUNDLE_FORMAT = 'swf-es-run-bundle';
export const BUNDLE_VERSION = 1;

export interface BundleHeader {
  format: typeof BUNDLE_FORMAT;
  version: typeof BUNDLE_VERSION;
  run_number: number;
  execution_id: string;
  namespace: string;
  machine_hash: string | null;
  events: number;
}

export interface BundleEvent {
  id: string;
  streamName: string;
  type: string;
  data: unknown;
  metadata: unknown;
  revision: number;
  position: number;
  recordedAt: string;
}

const COUNTERS = new Set([EXECUTION_IDS_STREAM, RUN_NUMBERS_STREAM]);
/** Streams that serve many runs (the agents', and the workers' in older logs): a bundle holds only this run's part. */
const isShared = (stream: string): boolean =>
  stream.startsWith(STREAM_PREFIXES.agent) || stream.startsWith(LEGACY_WORKER_PREFIX);

/** The run's bundle events, in log order. */
export async function bundleEvents(
  store: EventStore,
  info: RunInfo,
  options: { onDamaged?: RunEventsOptions['onDamaged'] } = {},
): Promise<StoredEvent[]> {
  const events = await counterEvents(store, info);
  for await (const e of readRunEvents(store, info, { agents: true, ...options })) events.push(e);
  return events.sort((a, b) => (a.position < b.position ? -1 : a.position > b.position ? 1 : 0));
}

const line = (e: StoredEvent): string =>
  JSON.stringify({
    id: e.id,
    streamName: e.streamName,
    type: e.type,
    data: e.data,
    metadata: e.metadata,
    revision: Number(e.revision),
    position: Number(e.position),
    recordedAt: e.recordedAt.toISOString(),
  });

/** Writes a run's bundle, a line at a time. Returns the number of events written. */
export async function exportRun(
  store: EventStore,
  run: string | number,
  write: (chunk: string) => void,
  options: { onDamaged?: RunEventsOptions['onDamaged'] } = {},
): Promise<BundleHeader> {
  const info = await locateRun(store, run);
  const events = await bundleEvents(store, info, options);
  const header: BundleHeader = {
    format: BUNDLE_FORMAT,
    version: BUNDLE_VERSION,
    run_number: info.run_number,
    execution_id: info.execution_id,
    namespace: info.namespace,
    machine_hash: info.machine_hash ?? null,
    events: events.length,
  };
  write(JSON.stringify(header) + '\n');
  let chunk = '';
  for (const e of events) {
    chunk += line(e) + '\n';
    if (chunk.length > 1 << 20) {
      write(chunk);
      chunk = '';
    }
  }
  if (chunk) write(chunk);
  return header;
}

export interface ParsedBundle {
  header: BundleHeader;
  events: BundleEvent[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses and validates a whole bundle; throws a ValidationError naming the line on the first problem. */
export function parseBundle(text: string, source = 'bundle'): ParsedBundle {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const at = (n: number, what: string): ValidationError => new ValidationError(`${source} line ${n}: ${what}`);
  let raw: unknown;
  try {
    raw = JSON.parse(lines[0] ?? '');
  } catch {
    throw at(1, `not a run bundle (the first line must be a JSON header with "format":"${BUNDLE_FORMAT}")`);
  }
  if (!isObject(raw) || raw.format !== BUNDLE_FORMAT)
    throw at(1, `not a run bundle (expected "format":"${BUNDLE_FORMAT}")`);
  if (raw.version !== BUNDLE_VERSION)
    throw at(
      1,
      `bundle version ${JSON.stringify(raw.version)} is not supported (this swf reads version ${BUNDLE_VERSION})`,
    );
  if (typeof raw.run_number !== 'number' || !Number.isInteger(raw.run_number) || raw.run_number < 1)
    throw at(1, 'header: run_number must be a positive integer');
  if (typeof raw.execution_id !== 'string' || raw.execution_id === '')
    throw at(1, 'header: execution_id must be a non-empty string');
  if (typeof raw.namespace !== 'string' || raw.namespace === '')
    throw at(1, 'header: namespace must be a non-empty string');
  if (typeof raw.events !== 'number' || !Number.isInteger(raw.events) || raw.events < 0)
    throw at(1, 'header: events must be a count');
  const header = raw as unknown as BundleHeader;
  if (lines.length - 1 !== header.events) {
    throw at(
      lines.length,
      `the header announces ${header.events} events but the file holds ${lines.length - 1} (truncated or damaged)`,
    );
  }
  const events: BundleEvent[] = [];
  const ids = new Set<string>();
  const revisions = new Map<string, number>();
  for (let i = 1; i < lines.length; i++) {
    let e: unknown;
    try {
      e = JSON.parse(lines[i]!);
    } catch {
      throw at(i + 1, 'not valid JSON');
    }
    if (!isObject(e)) throw at(i + 1, 'not an event object');
    for (const k of ['id', 'streamName', 'type', 'recordedAt'] as const) {
      if (typeof e[k] !== 'string' || e[k] === '') throw at(i + 1, `event field ${k} must be a non-empty string`);
    }
    if (typeof e.revision !== 'number' || typeof e.position !== 'number')
      throw at(i + 1, 'event fields revision and position must be numbers');
    const ev = e as unknown as BundleEvent;
    try {
      parseEvent({
        ...ev,
        revision: BigInt(ev.revision),
        position: BigInt(ev.position),
        recordedAt: new Date(ev.recordedAt),
      } as StoredEvent);
    } catch (err: unknown) {
      throw at(i + 1, `${ev.type} ${ev.id}: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (ids.has(ev.id)) throw at(i + 1, `event id ${ev.id} appears twice`);
    ids.add(ev.id);
    const m = ev.metadata as { namespace?: unknown } | null;
    if (isObject(m) && typeof m.namespace === 'string' && m.namespace !== header.namespace) {
      throw at(i + 1, `event ${ev.id} is in namespace '${m.namespace}', the bundle's is '${header.namespace}'`);
    }
    // The header names the run the events must all belong to: one that disagrees would be imported under the
    // header's identity while its events land in another run's streams.
    if (!COUNTERS.has(ev.streamName)) {
      const d = isObject(ev.data) ? ev.data : {};
      const meta: Record<string, unknown> = isObject(m) ? m : {};
      const runs = [d.run_id, meta.runNumber].filter((v) => v !== undefined && v !== null).map(String);
      const executions = [d.execution_id, meta.executionId].filter((v) => typeof v === 'string');
      const wrongRun = runs.find((r) => r !== String(header.run_number));
      if (wrongRun !== undefined)
        throw at(i + 1, `${ev.type} ${ev.id} belongs to run ${wrongRun}, the header's run is ${header.run_number}`);
      const wrongExecution = executions.find((x) => x !== header.execution_id);
      if (wrongExecution !== undefined)
        throw at(
          i + 1,
          `${ev.type} ${ev.id} belongs to execution ${String(wrongExecution)}, the header's is ${header.execution_id}`,
        );
    }
    if (!COUNTERS.has(ev.streamName) && !isShared(ev.streamName)) {
      const expected = (revisions.get(ev.streamName) ?? -1) + 1;
      if (ev.revision !== expected)
        throw at(
          i + 1,
          `stream ${ev.streamName}: revision ${ev.revision} where ${expected} was expected (events missing or out of order)`,
        );
      revisions.set(ev.streamName, expected);
    }
    events.push(ev);
  }
  if (
    !events.some(
      (e) => e.type === 'WorkflowExecutionStarted' && e.streamName === streams.execution(header.execution_id),
    )
  ) {
    throw new ValidationError(
      `${source}: no WorkflowExecutionStarted for execution ${header.execution_id} (not a complete run bundle)`,
    );
  }
  return { header, events };
}

async function headRevision(store: EventStore, stream: string): Promise<number> {
  const last = await lastRevision(store, stream);
  return last === 'no_stream' ? -1 : Number(last);
}

async function streamExists(store: EventStore, stream: string): Promise<boolean> {
  return (await headRevision(store, stream)) >= 0;
}

/** Counter entries so the target's next allocation comes after `value` (padding reserved numbers). */
function counterAppend(
  stream: string,
  head: number,
  upTo: number,
  make: (rev: number) => ReturnType<typeof domainEvent>,
): StreamAppend | undefined {
  if (upTo <= head) return undefined;
  const events = [];
  for (let rev = head + 1; rev <= upTo; rev++) events.push(make(rev));
  return { stream, events, expectedRevision: head < 0 ? 'no_stream' : BigInt(head) };
}

export interface ImportResult {
  run_number: number;
  execution_id: string;
  events: number;
  streams: number;
  /** With --renumber: the run number and execution id the bundle had. */
  renumbered_from?: { run_number: number; execution_id: string };
}

/** The target's next run number and execution id (as the DAQ would allocate them), for --renumber. */
async function nextIdentity(
  store: EventStore,
  bundle: ParsedBundle,
): Promise<{ run_number: number; execution_id: string }> {
  let runNumber = FIRST_RUN_NUMBER + (await headRevision(store, RUN_NUMBERS_STREAM)) + 1;
  // A run stream without its counter entry (written by hand): skip it, the counter pads the gap.
  while (await streamExists(store, streams.run(String(runNumber)))) runNumber++;
  const old = bundle.header.execution_id;
  const started = bundle.events.find((e) => e.type === 'WorkflowExecutionStarted')?.data as
    { workflow_name?: unknown; executed_by?: unknown } | undefined;
  const stem =
    /^(.*)-\d{4,}$/.exec(old)?.[1] ??
    (typeof started?.workflow_name === 'string' && typeof started.executed_by === 'string'
      ? `${started.workflow_name}-${started.executed_by}`
      : old);
  let sequence = (await headRevision(store, EXECUTION_IDS_STREAM)) + 2;
  let executionId = `${stem}-${String(sequence).padStart(4, '0')}`;
  while (await streamExists(store, streams.execution(executionId)))
    executionId = `${stem}-${String(++sequence).padStart(4, '0')}`;
  return { run_number: runNumber, execution_id: executionId };
}

/**
 * The bundle as the run `to`: run ids and numbers, the execution id, file names (`swf.<run>.<seq>…`), stream
 * names and metadata rewritten consistently, and every event id replaced by one derived from it and the new
 * execution id (so the same bundle can be imported again beside itself), with the causation and correlation ids
 * and the ids that data refers to following. File names change, and the data agent's checksums and FastMon's
 * samples are keyed by file name, so a renumbered run's `--check` reports those as divergences; time travel and
 * what-if work as on the original.
 */
export function renumberBundle(bundle: ParsedBundle, to: { run_number: number; execution_id: string }): ParsedBundle {
  const oldRun = String(bundle.header.run_number);
  const newRun = String(to.run_number);
  const oldExec = bundle.header.execution_id;
  const escape = (x: string): string => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const execRe = new RegExp(`${escape(oldExec)}(?![0-9])`, 'g');
  const runRe = new RegExp(`(?<![0-9])${oldRun}(?![0-9])`, 'g');
  const ids = new Map(bundle.events.map((e) => [e.id, deriveId(e.id, 'renumbered', to.execution_id)]));
  const text = (v: string): string => ids.get(v) ?? v.replace(execRe, to.execution_id).replace(runRe, newRun);
  const walk = (v: unknown, key?: string): unknown => {
    if (typeof v === 'string') return text(v);
    if (typeof v === 'number')
      return (key === 'run_number' || key === 'runNumber') && v === bundle.header.run_number ? to.run_number : v;
    if (Array.isArray(v)) return v.map((x) => walk(x));
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      // The recorded configuration and machine definitions are not the run's identity: copied as they are.
      for (const [k, x] of Object.entries(v))
        out[k] = k === 'parameter_values' || k === 'machine_definitions' ? x : walk(x, k);
      return out;
    }
    return v;
  };
  const events = bundle.events.map((e) => ({
    ...e,
    id: ids.get(e.id)!,
    streamName: isShared(e.streamName) || COUNTERS.has(e.streamName) ? e.streamName : text(e.streamName),
    data: walk(e.data),
    metadata: walk(e.metadata),
  }));
  return { header: { ...bundle.header, run_number: to.run_number, execution_id: to.execution_id }, events };
}

/** Imports a parsed bundle: refuses a run number or execution id the target already holds; stores all or nothing. */
export async function importBundle(
  store: EventStore,
  bundle: ParsedBundle,
  options: { renumber?: boolean } = {},
): Promise<ImportResult> {
  if (options.renumber) {
    // Another importer may take the same numbers meanwhile: the counter appends then conflict, and we take the next.
    for (let attempt = 0; ; attempt++) {
      const renumbered = renumberBundle(bundle, await nextIdentity(store, bundle));
      try {
        return {
          ...(await importBundle(store, renumbered)),
          renumbered_from: { run_number: bundle.header.run_number, execution_id: bundle.header.execution_id },
        };
      } catch (e: unknown) {
        if (!isExpectedVersionConflict(e) || attempt >= 5) throw e;
      }
    }
  }
  const { header, events } = bundle;
  const runId = String(header.run_number);
  const taken: string[] = [];
  if ((await streamExists(store, streams.run(runId))) || (await runNumberAllocated(store, header.run_number)))
    taken.push(`run number ${runId}`);
  if (await streamExists(store, streams.execution(header.execution_id)))
    taken.push(`execution id ${header.execution_id}`);
  if (taken.length > 0) {
    throw new ConcurrencyError(
      `${store.url} already holds ${taken.join(' and ')}; nothing imported (--renumber would give the run the target's next run number and execution id)`,
    );
  }
  // One append per run of consecutive events of a stream, in the bundle's (log) order, so the target's log
  // keeps the run's order: replays fold the same sequence. All of it in one commit.
  const revisions = new Map<string, number>();
  const appends: StreamAppend[] = [];
  let current: { stream: string; events: NewEvent[]; expectedRevision: ExpectedRevision } | undefined;
  for (const e of events) {
    if (COUNTERS.has(e.streamName)) continue;
    if (current?.stream !== e.streamName) {
      let rev = revisions.get(e.streamName);
      // A worker's or agent's stream may already exist in the target (other runs): this run's part goes after it.
      if (rev === undefined) rev = isShared(e.streamName) ? await headRevision(store, e.streamName) : -1;
      current = { stream: e.streamName, events: [], expectedRevision: rev >= 0 ? BigInt(rev) : 'no_stream' };
      appends.push(current);
    }
    current.events.push({ id: e.id, type: e.type, data: e.data, metadata: markImported(e.metadata) });
    revisions.set(
      e.streamName,
      (revisions.get(e.streamName) ??
        (current.expectedRevision === 'no_stream' ? -1 : Number(current.expectedRevision))) + 1,
    );
  }
  // Counters: the next run number / execution sequence the target allocates must come after the imported run's.
  const ns = header.namespace;
  const runHead = await headRevision(store, RUN_NUMBERS_STREAM);
  const runCounter = counterAppend(RUN_NUMBERS_STREAM, runHead, header.run_number - FIRST_RUN_NUMBER, (rev) =>
    domainEvent(
      'RunNumberAllocated',
      {
        run_number: FIRST_RUN_NUMBER + rev,
        execution_id:
          FIRST_RUN_NUMBER + rev === header.run_number
            ? header.execution_id
            : `reserved-by-import-of-${header.execution_id}`,
      },
      { id: deriveId(RUN_NUMBERS_STREAM, rev, 'import', header.execution_id), namespace: ns },
    ),
  );
  if (runCounter) appends.push(runCounter);
  const seq = /-(\d{4,})$/.exec(header.execution_id);
  if (seq) {
    const sequence = Number(seq[1]);
    const execHead = await headRevision(store, EXECUTION_IDS_STREAM);
    const execCounter = counterAppend(EXECUTION_IDS_STREAM, execHead, sequence - 1, (rev) =>
      domainEvent(
        'ExecutionIdAllocated',
        {
          execution_id: rev + 1 === sequence ? header.execution_id : `reserved-by-import-of-${header.execution_id}`,
          sequence: rev + 1,
        },
        { id: deriveId(EXECUTION_IDS_STREAM, rev, 'import', header.execution_id), namespace: ns },
      ),
    );
    if (execCounter) appends.push(execCounter);
  }
  await store.commit(appends);
  return {
    run_number: header.run_number,
    execution_id: header.execution_id,
    events: appends.reduce((n, a) => n + a.events.length, 0),
    streams: new Set(appends.map((a) => a.stream)).size,
  };
}

/** Imported events are history: marked so that no agent acts on them (see `isImported`). */
function markImported(metadata: unknown): Record<string, unknown> {
  return { ...(typeof metadata === 'object' && metadata !== null ? metadata : {}), imported: true };
}

async function runNumberAllocated(store: EventStore, runNumber: number): Promise<boolean> {
  try {
    await locateRun(store, runNumber);
    return true;
  } catch (e: unknown) {
    if (isNotFoundError(e)) return false;
    throw e;
  }
}
