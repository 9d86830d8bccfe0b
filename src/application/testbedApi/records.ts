/**
 * What the testbed monitor's REST writes become in the log: the event types (facts, past tense), the streams they
 * live in, and the record each stream folds to. Shared by the application service (which decides) and the
 * projection (which folds the same events into the views).
 *
 * | Stream | Events |
 * |---|---|
 * | `swf-agent-ids` | TestbedAgentIdAllocated (agent id = revision + 1) |
 * | `swf-run-numbers` | TestbedRunNumberAllocated, beside the DAQ's RunNumberAllocated: one sequence |
 * | `swf-execution-ids` | TestbedExecutionSequenceAllocated, beside the DAQ's ExecutionIdAllocated |
 * | `swf-run-ids`, `swf-workflow-definition-ids` | the AutoField ids, each with its record's stream |
 * | `testbed-state-events` | SystemStateEventRecorded (event_id = its log position; many writers) |
 * | `testbed-subscribers` | SubscriberRegistered (id = revision + 1) |
 * | `testbed-logs` | agent_log (many writers) |
 * | `agent-<instance_name>` | agent_heartbeat, as our own agents write it |
 * | `testbed-namespace-<name>` | NamespaceEnsured |
 * | `testbed-definition-<name>@<version>` | WorkflowDefinitionRegistered |
 * | `testbed-execution-<id>` | WorkflowExecutionRegistered, WorkflowExecutionUpdated |
 * | `testbed-run-<run_number>` | RunRegistered, RunUpdated |
 * | `testbed-runstate-<run_number>` | RunStateReported, RunStateUpdateReported (what the agent said, beside what the log implies) |
 * | `testbed-stf-<file_id>` | StfFileRegistered, StfFileUpdated (file_id derived from the file name) |
 * | `testbed-tf-<tf_file_id>` | TfSampleRegistered (tf_file_id derived from the file name) |
 * | `testbed-slice-<sample>:<slice_id>` | TfSliceRegistered, TfSliceStatusReported (id = the registration's log position) |
 *
 * Keys that are not stream-safe (a subscriber name holds `/`) are replaced by `=` and a hash of the key.
 */
import { createHash } from 'node:crypto';
import { deriveId } from '../../messages/ids.js';

export const TESTBED_EVENT_TYPES = [
  'TestbedAgentIdAllocated',
  'TestbedRunNumberAllocated',
  'TestbedExecutionSequenceAllocated',
  'TestbedRunIdAllocated',
  'TestbedDefinitionIdAllocated',
  'SystemStateEventRecorded',
  'SubscriberRegistered',
  'NamespaceEnsured',
  'WorkflowDefinitionRegistered',
  'WorkflowExecutionRegistered',
  'WorkflowExecutionUpdated',
  'RunRegistered',
  'RunUpdated',
  'RunStateReported',
  'RunStateUpdateReported',
  'StfFileRegistered',
  'StfFileUpdated',
  'TfSampleRegistered',
  'TfSliceRegistered',
  'TfSliceStatusReported',
] as const;
export type TestbedEventType = (typeof TESTBED_EVENT_TYPES)[number];
const TESTBED_EVENT_TYPE_SET: ReadonlySet<string> = new Set(TESTBED_EVENT_TYPES);
/** Asked of every event the projections fold: one hash lookup, not twenty string comparisons. */
export const isTestbedEventType = (t: string): t is TestbedEventType => TESTBED_EVENT_TYPE_SET.has(t);

export const COUNTER_STREAMS = {
  agentIds: 'swf-agent-ids',
  runNumbers: 'swf-run-numbers',
  executionIds: 'swf-execution-ids',
  runIds: 'swf-run-ids',
  definitionIds: 'swf-workflow-definition-ids',
  systemStateEvents: 'testbed-state-events',
  subscribers: 'testbed-subscribers',
  logs: 'testbed-logs',
} as const;

const SAFE_KEY = /^[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,150}$/;

/** A key as part of a stream name: itself when it is safe, else `=` and a hash (a safe key never starts with `=`). */
export function streamKey(key: string): string {
  return SAFE_KEY.test(key) ? key : `=${createHash('sha256').update(key).digest('hex').slice(0, 40)}`;
}

export const recordStreams = {
  agent: (instanceName: string): string => `agent-${streamKey(instanceName)}`,
  namespace: (name: string): string => `testbed-namespace-${streamKey(name)}`,
  definition: (name: string, version: string): string => `testbed-definition-${streamKey(`${name}@${version}`)}`,
  execution: (id: string): string => `testbed-execution-${streamKey(id)}`,
  run: (runNumber: number): string => `testbed-run-${runNumber}`,
  runState: (runNumber: number): string => `testbed-runstate-${runNumber}`,
  stf: (fileId: string): string => `testbed-stf-${fileId}`,
  sample: (tfFileId: string): string => `testbed-tf-${tfFileId}`,
  slice: (fastmonFile: string, sliceId: number): string => `testbed-slice-${streamKey(`${fastmonFile}:${sliceId}`)}`,
};

/** The testbed gives STF files and TF samples UUIDs; ours follow from the file name, so a retry finds the same. */
export const stfFileId = (stfFilename: string): string => deriveId('testbed-stf-file', stfFilename);
export const tfFileId = (tfFilename: string): string => deriveId('testbed-tf-file', tfFilename);

/**
 * The TF sample a slice file was cut from: `<sample stem>_slice_NNN.tf` → `<sample stem>.tf`. The real fast
 * processing agent posts the slice's own file name, not the sample (testbed-facts §10.2); the wire wins.
 */
export function sampleOfSliceFile(tfFilename: string): string | undefined {
  const m = /^(.+)_slice_\d+(\.[A-Za-z0-9]+)$/.exec(tfFilename);
  return m ? `${m[1]}${m[2]}` : undefined;
}

/** A record's fields (a PATCH lays its `changes` over them, `metadata` replaced whole as DRF does). */
export type RecordFields = Record<string, unknown>;

/** A stream's record: each registration or update event carries the whole record as it stands after it. */
export function foldRecord(events: readonly { type: string; data: unknown }[]): RecordFields | undefined {
  let record: RecordFields | undefined;
  for (const e of events) {
    const d = e.data as { record?: RecordFields };
    if (d.record !== undefined) record = d.record;
  }
  return record;
}
