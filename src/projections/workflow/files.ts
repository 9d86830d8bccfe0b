/** `stf_files` and `fastmon_files`: the STF files the DAQ announced and the data agent registered, and the TF samples FastMon took of them. */
import { NO_WRITES, type ProjectedEvent, type ProjectionPart, type Write } from '../projection.js';
import { runStateStep } from '../../machines/runState.js';
import { runFor, stepRun } from './runs.js';
import { json, type WorkflowState } from './state.js';

const STF_GEN = `INSERT INTO stf_files (file_id, stf_filename, run_number, execution_id, namespace, sequence,
  machine_state, daq_state, daq_substate, status, created_at, updated_at, metadata)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'registered', ?, ?, ?) ON CONFLICT (stf_filename) DO NOTHING`;
const STF_READY = `INSERT INTO stf_files (file_id, stf_filename, run_number, execution_id, namespace, sequence,
  machine_state, daq_state, daq_substate, file_size_bytes, checksum, status, created_at, updated_at, metadata)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'processed', ?, ?, ?)
  ON CONFLICT (stf_filename) DO UPDATE SET file_size_bytes = excluded.file_size_bytes, checksum = excluded.checksum,
  status = 'processed', updated_at = excluded.updated_at,
  metadata = json_patch(coalesce(stf_files.metadata, '{}'), excluded.metadata)`;
const STF_SAMPLED = `UPDATE stf_files SET tf_file_count = tf_file_count + 1 WHERE stf_filename = ?`;

export function evolveFiles(e: ProjectedEvent, state: WorkflowState): readonly Write[] {
  if (e.parsed?.kind !== 'message') return NO_WRITES;
  const m = e.parsed.message;
  switch (m.msg_type) {
    case 'stf_gen':
      return [
        {
          sql: STF_GEN,
          params: [
            e.id,
            m.filename,
            Number(m.run_id),
            m.execution_id,
            m.namespace,
            m.sequence,
            m.state,
            m.state,
            m.substate,
            e.time,
            e.time,
            json({ sequence: m.sequence, created_by: m.sender, substate: m.substate }),
          ],
        },
      ];
    case 'stf_ready':
      return [
        {
          sql: STF_READY,
          params: [
            e.id,
            m.filename,
            Number(m.run_id),
            m.execution_id,
            m.namespace,
            m.sequence,
            m.state ?? null,
            m.state ?? null,
            m.substate ?? null,
            m.size_bytes,
            m.checksum,
            e.time,
            e.time,
            json({ processed_by: m.processed_by ?? m.sender, updated_at: e.time }),
          ],
        },
      ];
    case 'tf_file_registered': {
      // a repeat of a registered sample changes nothing
      if (state.samples.get(m.tf_filename) !== undefined) return NO_WRITES;
      const run = Number(m.run_id);
      state.samples.put(m.tf_filename, {
        fileId: e.id,
        stfFilename: m.stf_filename,
        run,
        executionId: m.execution_id,
        namespace: m.namespace,
        tfFirst: m.tf_first,
        tfLast: m.tf_last,
        tfCount: m.tf_count,
        sizeBytes: m.file_size_bytes ?? null,
        checksum: null,
        status: m.status ?? 'registered',
        sliceCount: 0,
        createdAt: e.time,
        updatedAt: e.time,
        metadata: json({ created_from: m.stf_filename, agent_name: m.processed_by ?? m.sender }),
      });
      const step = runStateStep(e.parsed, undefined, { max_slice_retries: 0 });
      if (step.run) stepRun(state, run, runFor(state, run, e), step.run, e.time);
      return [{ sql: STF_SAMPLED, params: [m.stf_filename] }];
    }
    default:
      return NO_WRITES;
  }
}

export const filesPart = {
  evolve: evolveFiles,
  messages: ['stf_gen', 'stf_ready', 'tf_file_registered'],
} as const satisfies ProjectionPart<WorkflowState>;
