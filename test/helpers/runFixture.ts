/**
 * A small but complete, plausible fast processing run, appended through the store port with the message helpers,
 * for projection and monitor tests before (and besides) the real agents: the execution, its run number, the DAQ
 * lifecycle, STFs, TF samples, slices, workers taking and finishing them (with a failure and retry, an expired
 * lease, a late result for the expired attempt, and a slice that fails for good), heartbeats and logs.
 *
 * The event vocabulary and streams are the agents' (src/messages/streams.ts). Everything is deterministic: ids are
 * derived, the clock is a counter from `startTime`, the samples come from the keyed PRNG.
 */
import type { EventStore, NewEvent, StreamAppend } from '../../src/eventStore/eventStore.js';
import { machineDefinitions, machineHash } from '../../src/machines/export.js';
import { leaseDeadline } from '../../src/machines/slice.js';
import {
  datasetName,
  deriveId,
  domainEvent,
  messageEvent,
  RUN_NUMBERS_STREAM,
  sampleTfs,
  simulateStf,
  sliceSample,
  stfFilename,
  streamForMessage,
  streams,
  type DomainEventData,
  type DomainEventType,
  type EnvelopedEvent,
  type Message,
} from '../../src/messages/index.js';

export interface RunFixtureOptions {
  runNumber?: number;
  executionId?: string;
  workflowName?: string;
  namespace?: string;
  stfCount?: number;
  tfFilesPerStf?: number;
  slicesPerSample?: number;
  workers?: number;
  maxSliceRetries?: number;
  /** The workflow clock's start (ISO UTC). */
  startTime?: string;
  /** A failed attempt that is retried, an expired lease (and a late result for it), a slice failing for good. */
  incidents?: boolean;
  /** end_run, draining the queue, RunFinished and WorkflowExecutionFinished. Default true. */
  finish?: boolean;
  /** Appends per store commit. */
  commitSize?: number;
  /** Seed of the TF sampling. */
  seed?: number;
}

export interface RunFixture {
  executionId: string;
  runNumber: number;
  runId: string;
  namespace: string;
  stfFiles: string[];
  samples: string[];
  slices: string[];
  workers: string[];
  agents: string[];
  /** What the RunState should say at the end. */
  expected: {
    stf_samples_received: number;
    slices_created: number;
    slices_queued: number;
    slices_processing: number;
    slices_completed: number;
    slices_failed: number;
    slices_retried: number;
    phase: string;
  };
  /** The slices with incidents (undefined when `incidents` is off). */
  incidents?: { retried: string; leaseExpired: string; failedForGood: string };
  events: number;
  lastPosition: bigint;
  endTime: string;
}

interface Pending {
  stream: string;
  event: NewEvent;
}

interface QueuedSlice {
  name: string;
  sample: string;
  stf: string;
  sliceId: number;
  attempt: number;
  spec: { start: number; end: number; tf_count: number };
  causeId: string;
}

/** Appends a run to `store` and returns what it appended. */
export async function appendRunFixture(store: EventStore, options: RunFixtureOptions = {}): Promise<RunFixture> {
  const runNumber = options.runNumber ?? 100010;
  const runId = String(runNumber);
  const workflowName = options.workflowName ?? 'fast_processing_default';
  const executionId = options.executionId ?? `${workflowName}-swf-${String(runNumber - 100009).padStart(4, '0')}`;
  const namespace = options.namespace ?? 'test';
  const stfCount = options.stfCount ?? 3;
  const tfFilesPerStf = options.tfFilesPerStf ?? 2;
  const slicesPerSample = options.slicesPerSample ?? 3;
  const workerCount = options.workers ?? 2;
  const maxRetries = options.maxSliceRetries ?? 3;
  const incidents = options.incidents ?? true;
  const finish = options.finish ?? true;
  const seed = options.seed ?? 1;
  const sliceProcessingTime = 30;
  const leaseFactor = 3;

  let clock = Date.parse(options.startTime ?? '2026-01-15T10:00:00.000Z');
  const t0 = clock;
  const now = (stepMs = 10): string => {
    clock += stepMs;
    return new Date(clock).toISOString();
  };
  const tick = (): number => (clock - t0) / 1000;

  const out: Pending[] = [];
  const push = (stream: string, e: EnvelopedEvent | NewEvent): void => {
    out.push({ stream, event: e });
  };
  const msg = (m: Message, cause?: { id: string }, purpose = ''): string => {
    const id = deriveId(executionId, m.msg_type, purpose, out.length);
    push(streamForMessage(m), messageEvent(m, { id, ...(cause ? { cause } : {}) }));
    return id;
  };
  const dom = <T extends DomainEventType>(stream: string, type: T, data: DomainEventData<T>): string => {
    const id = deriveId(executionId, type, out.length);
    push(stream, domainEvent(type, data, { id, namespace, executionId, runNumber }));
    return id;
  };

  const daq = 'daq_simulator-agent-swf-1';
  const data = 'data-agent-swf-2';
  const fastmon = 'fastmon-agent-swf-3';
  const fastproc = 'fast_processing-agent-swf-4';
  const workers = Array.from({ length: workerCount }, (_, i) => `panda-worker-swf-${i + 1}`);
  const agents = [daq, data, fastmon, fastproc, ...workers];
  const agentType: Record<string, string> = {
    [daq]: 'DAQ_Simulator',
    [data]: 'DATA',
    [fastmon]: 'fastmon',
    [fastproc]: 'Fast_Processing',
  };

  const heartbeat = (agent: string, operational: 'STARTING' | 'READY' | 'PROCESSING' | 'EXITED'): void => {
    msg({
      msg_type: 'agent_heartbeat',
      instance_name: agent,
      agent_type: agentType[agent] ?? 'PanDA-worker',
      status: operational === 'EXITED' ? 'EXITED' : 'OK',
      operational_state: operational,
      namespace,
      pid: 4000 + agents.indexOf(agent),
      hostname: 'testhost',
      sender: agent,
      created_at: now(1),
      execution_id: executionId,
      run_id: runId,
      description: `${agentType[agent] ?? 'PanDA-worker'} agent`,
    });
  };
  const log = (agent: string, level: 10 | 20 | 30 | 40, message: string): void => {
    const levelname = { 10: 'DEBUG', 20: 'INFO', 30: 'WARNING', 40: 'ERROR' }[level];
    msg({
      msg_type: 'agent_log',
      instance_name: agent,
      level,
      levelname,
      message,
      sender: agent,
      namespace,
      created_at: now(1),
      execution_id: executionId,
      run_id: runId,
    });
  };

  const parameterValues = {
    testbed: { namespace },
    workflow: { name: workflowName, version: '1.0' },
    fast_processing: {
      stf_count: stfCount,
      target_worker_count: workerCount,
      stf_sampling_rate: 1,
      slices_per_sample: slicesPerSample,
      slice_processing_time: sliceProcessingTime,
      tf_files_per_stf: tfFilesPerStf,
      tf_count_per_stf: 1000,
      tf_size_fraction: 0.15,
      seed,
      slice_lease_factor: leaseFactor,
      max_slice_retries: maxRetries,
      worker_failure_rate: 0,
    },
  };

  // ---- the execution and the run announcement ------------------------------------------------------
  const definitions = machineDefinitions();
  const root = dom(streams.execution(executionId), 'WorkflowExecutionStarted', {
    execution_id: executionId,
    workflow_name: workflowName,
    namespace,
    executed_by: 'swf',
    parameter_values: parameterValues,
    machine_hash: machineHash(definitions),
    machine_definitions: definitions,
    start_time: now(0),
  });
  dom(RUN_NUMBERS_STREAM, 'RunNumberAllocated', { run_number: runNumber, execution_id: executionId });
  for (const a of agents) heartbeat(a, 'READY');
  log(daq, 20, `run ${runId} imminent`);

  const daqBody = (created: string) => ({
    namespace,
    sender: daq,
    execution_id: executionId,
    run_id: runId,
    created_at: created,
    timestamp: created,
    simulation_tick: tick(),
  });
  const common = (sender: string) => ({
    namespace,
    sender,
    execution_id: executionId,
    run_id: runId,
    created_at: now(1),
  });

  const imminent = msg({ msg_type: 'run_imminent', ...daqBody(now(100)), state: 'beam', substate: 'not_ready' });
  dom(streams.data(runId), 'DatasetOpened', {
    run_id: runId,
    execution_id: executionId,
    namespace,
    dataset: datasetName(runId),
  });
  msg(
    {
      msg_type: 'run_imminent_worker',
      ...common(fastproc),
      content: {
        run_id: runId,
        execution_id: executionId,
        core_count: workerCount,
        target_worker_count: workerCount,
        slice_processing_time: sliceProcessingTime,
        worker_rampup_time: 1,
        worker_rampdown_time: 1,
      },
    },
    { id: imminent },
  );
  msg({ msg_type: 'start_run', ...daqBody(now(1000)), state: 'run', substate: 'physics' });
  heartbeat(fastproc, 'PROCESSING');

  // ---- data taking, with workers taking slices as they come ----------------------------------------
  const queue: QueuedSlice[] = [];
  const busy = new Map<string, { slice: QueuedSlice; started: string }>();
  const stfFiles: string[] = [];
  const samples: string[] = [];
  const slices: string[] = [];
  let taken = 0;
  let completed = 0;
  let failed = 0;
  let retried = 0;
  const plan: Record<string, 'fail-once' | 'expire' | 'fail-always'> = {};
  let lateResult: { slice: QueuedSlice; worker: string } | undefined;

  const sendSlice = (s: QueuedSlice): void => {
    const id = msg(
      {
        msg_type: 'slice',
        ...common(fastproc),
        content: {
          run_id: runId,
          execution_id: executionId,
          req_id: deriveId(executionId, 'req', s.name, s.attempt),
          filename: s.stf,
          tf_filename: s.name,
          fastmon_file: s.sample,
          slice_id: s.sliceId,
          start: s.spec.start,
          end: s.spec.end,
          tf_count: s.spec.tf_count,
          state: 'queued',
          substate: 'new',
          attempt: s.attempt,
          slice_processing_time: sliceProcessingTime,
        },
      },
      { id: s.causeId },
      s.name,
    );
    queue.push({ ...s, causeId: id });
  };

  const result = (worker: string, s: QueuedSlice, ok: boolean, started: string): string =>
    msg(
      {
        msg_type: 'slice_result',
        ...common(worker),
        content: {
          slice_id: s.sliceId,
          tf_filename: s.name,
          attempt: s.attempt,
          state: ok ? 'done' : 'failed',
          requested_at: started,
          processing_start_at: started,
          processed_at: now(0),
          hostname: 'testhost',
          result: ok
            ? { state: true, result: { processed: true, output_filename: `${s.name}.edm4eic.root` }, error: null }
            : { state: false, result: null, error: 'payload failed' },
        },
      },
      { id: s.causeId },
      `${s.name}#${s.attempt}`,
    );

  const finishWorker = (worker: string): void => {
    const held = busy.get(worker);
    if (!held) return;
    busy.delete(worker);
    const { slice: s, started } = held;
    const kind = plan[s.name];
    const retry = (causeId: string): void => {
      retried++;
      sendSlice({ ...s, attempt: s.attempt + 1, causeId });
    };
    if (kind === 'expire' && s.attempt === 1) {
      const id = dom(streams.fastproc(runId), 'SliceLeaseExpired', {
        run_id: runId,
        execution_id: executionId,
        namespace,
        tf_filename: s.name,
        attempt: s.attempt,
        worker,
        expired_at: now(10),
      });
      log(fastproc, 30, `lease of ${s.name} attempt ${s.attempt} held by ${worker} expired`);
      retry(id);
      lateResult = { slice: s, worker };
      return;
    }
    const fails = (kind === 'fail-once' && s.attempt === 1) || kind === 'fail-always';
    const id = result(worker, s, !fails, started);
    if (!fails) {
      completed++;
      return;
    }
    if (s.attempt <= maxRetries) {
      retry(id);
    } else {
      failed++;
      log(fastproc, 40, `slice ${s.name} failed after ${s.attempt} attempts`);
    }
  };

  const startWorker = (worker: string): void => {
    const s = queue.shift();
    if (!s) return;
    taken++;
    if (incidents && s.attempt === 1) {
      if (taken === 2) plan[s.name] = 'fail-once';
      if (taken === 3) plan[s.name] = 'expire';
      if (taken === 4) plan[s.name] = 'fail-always';
    }
    const started = now(5);
    dom(streams.results(runId), 'SliceProcessingStarted', {
      run_id: runId,
      execution_id: executionId,
      namespace,
      slice_id: s.sliceId,
      tf_filename: s.name,
      fastmon_file: s.sample,
      attempt: s.attempt,
      worker,
      started_at: started,
      lease_deadline: leaseDeadline(started, sliceProcessingTime, leaseFactor),
    });
    busy.set(worker, { slice: s, started });
  };

  const workStep = (): void => {
    for (const w of workers) {
      finishWorker(w);
      if (lateResult && lateResult.worker === w) {
        // The worker that lost its lease reports anyway: a result for an attempt that is over.
        result(w, lateResult.slice, true, now(0));
        lateResult = undefined;
      }
      startWorker(w);
    }
  };

  for (let seq = 1; seq <= stfCount; seq++) {
    const stf = stfFilename(runId, seq);
    stfFiles.push(stf);
    const gen = msg({
      msg_type: 'stf_gen',
      ...daqBody(now(1000)),
      filename: stf,
      sequence: seq,
      state: 'run',
      substate: 'physics',
    });
    const { size_bytes, checksum } = simulateStf(stf);
    const ready = msg(
      {
        msg_type: 'stf_ready',
        ...common(data),
        filename: stf,
        checksum,
        size_bytes,
        sequence: seq,
        processed_by: data,
        state: 'run',
        substate: 'physics',
      },
      { id: gen },
    );
    const tfs = sampleTfs(stf, {
      seed,
      tf_files_per_stf: tfFilesPerStf,
      tf_count_per_stf: 1000,
      tf_size_fraction: 0.15,
      slices_per_sample: slicesPerSample,
    });
    for (const tf of tfs) {
      samples.push(tf.tf_filename);
      const reg = msg(
        {
          msg_type: 'tf_file_registered',
          ...common(fastmon),
          tf_filename: tf.tf_filename,
          stf_filename: stf,
          tf_count: tf.tf_count,
          tf_first: tf.tf_first,
          tf_last: tf.tf_last,
          file_size_bytes: tf.file_size_bytes,
          processed_by: fastmon,
          status: 'registered',
        },
        { id: ready },
      );
      for (const spec of sliceSample(tf, slicesPerSample)) {
        slices.push(spec.tf_filename);
        sendSlice({
          name: spec.tf_filename,
          sample: tf.tf_filename,
          stf,
          sliceId: spec.slice_id,
          attempt: 1,
          spec: { start: spec.start, end: spec.end, tf_count: spec.tf_count },
          causeId: reg,
        });
      }
    }
    workStep();
    if (seq % 10 === 0)
      for (const a of agents) heartbeat(a, a === fastproc || workers.includes(a) ? 'PROCESSING' : 'READY');
  }

  if (finish) {
    const end = msg({ msg_type: 'end_run', ...daqBody(now(1000)), total_stf_files: stfCount });
    dom(streams.data(runId), 'DatasetClosed', {
      run_id: runId,
      execution_id: executionId,
      namespace,
      dataset: datasetName(runId),
      total_stf_files: stfCount,
    });
    msg(
      {
        msg_type: 'end_run',
        ...common(fastproc),
        content: { run_id: runId, execution_id: executionId, total_stf_files: stfCount },
      },
      { id: end },
    );
    log(daq, 20, `run ${runId} ended after ${stfCount} STFs`);
    while (queue.length > 0 || busy.size > 0 || lateResult) workStep();
    dom(streams.fastproc(runId), 'RunFinished', {
      run_id: runId,
      execution_id: executionId,
      namespace,
      finished_at: now(10),
      stf_files: stfCount,
      stf_samples_received: samples.length,
      slices_created: slices.length,
      slices_completed: completed,
      slices_failed: failed,
      slices_retried: retried,
    });
    for (const a of agents) heartbeat(a, 'READY');
    dom(streams.execution(executionId), 'WorkflowExecutionFinished', {
      execution_id: executionId,
      status: 'completed',
      end_time: now(10),
    });
  }
  void root;

  // ---- append, consecutive events of one stream together, many appends per commit -------------------
  const commitSize = options.commitSize ?? 200;
  let batch: StreamAppend[] = [];
  let lastPosition = 0n;
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const { appends } = await store.commit(batch);
    lastPosition = appends[appends.length - 1]?.position ?? lastPosition;
    batch = [];
  };
  let current: { stream: string; events: NewEvent[] } | undefined;
  for (const p of out) {
    if (current && current.stream === p.stream) {
      current.events.push(p.event);
      continue;
    }
    if (current) batch.push({ stream: current.stream, events: current.events, expectedRevision: 'any' });
    if (batch.length >= commitSize) await flush();
    current = { stream: p.stream, events: [p.event] };
  }
  if (current) batch.push({ stream: current.stream, events: current.events, expectedRevision: 'any' });
  await flush();

  const processing = busy.size;
  const queued = queue.length;
  const firstByPlan = (k: string): string => Object.entries(plan).find(([, v]) => v === k)?.[0] ?? '';
  return {
    executionId,
    runNumber,
    runId,
    namespace,
    stfFiles,
    samples,
    slices,
    workers,
    agents,
    expected: {
      stf_samples_received: samples.length,
      slices_created: slices.length,
      slices_queued: queued,
      slices_processing: processing,
      slices_completed: completed,
      slices_failed: failed,
      slices_retried: retried,
      phase: finish ? 'completed' : 'physics',
    },
    ...(incidents
      ? {
          incidents: {
            retried: firstByPlan('fail-once'),
            leaseExpired: firstByPlan('expire'),
            failedForGood: firstByPlan('fail-always'),
          },
        }
      : {}),
    events: out.length,
    lastPosition,
    endTime: new Date(clock).toISOString(),
  };
}
