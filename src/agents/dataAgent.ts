/**
 * The data agent (DESIGN.md semantics 3): opens the run's dataset on run_imminent, registers each STF on stf_gen
 * (size and checksum simulated deterministically from the name) and answers `stf_ready`, closes the dataset on
 * end_run.
 */
import type { StoredEvent } from '../eventStore/eventStore.js';
import {
  datasetName,
  deriveId,
  domainEvent,
  type ParsedEvent,
  simulateStf,
  STREAM_PREFIXES,
  streams,
} from '../messages/index.js';
import { common, send } from './common.js';
import { type Agent, type AgentIdentity, type HandleContext, logLine, type Output } from './runtime.js';

export function dataAgent(identity: AgentIdentity): Agent {
  const agent: Agent = {
    ...identity,
    streamPrefixes: [STREAM_PREFIXES.run],
    handles: new Set(['run_imminent', 'stf_gen', 'end_run']),
    stateful: false,
    handle(event: StoredEvent, parsed: ParsedEvent, ctx: HandleContext): Output[] {
      if (parsed.kind !== 'message') return [];
      const m = parsed.message;
      if (m.msg_type !== 'run_imminent' && m.msg_type !== 'stf_gen' && m.msg_type !== 'end_run') return [];
      const ids = { execution_id: m.execution_id, run_id: m.run_id };
      const dataset = {
        run_id: m.run_id,
        execution_id: m.execution_id,
        namespace: identity.namespace,
        dataset: datasetName(m.run_id),
      };
      switch (m.msg_type) {
        case 'run_imminent':
          return [
            {
              stream: streams.data(m.run_id),
              event: domainEvent('DatasetOpened', dataset, {
                id: deriveId(event, 'dataset-opened'),
                namespace: identity.namespace,
                cause: event,
              }),
            },
            logLine(agent, 'info', `run ${m.run_id}: dataset ${dataset.dataset} opened`, {
              cause: event,
              purpose: 'opened',
              now: ctx.now,
              ...idsOf(ids),
            }),
          ];
        case 'stf_gen': {
          if (!('filename' in m)) return [];
          const stf = simulateStf(m.filename);
          return [
            send(
              {
                msg_type: 'stf_ready',
                ...common(agent, ids, ctx.now),
                filename: m.filename,
                checksum: stf.checksum,
                size_bytes: stf.size_bytes,
                sequence: m.sequence,
                processed_by: agent.name,
                state: m.state,
                substate: m.substate,
                simulation_tick: m.simulation_tick,
              },
              event,
              'stf_ready',
            ),
          ];
        }
        case 'end_run': {
          if ('content' in m) return [];
          return [
            {
              stream: streams.data(m.run_id),
              event: domainEvent(
                'DatasetClosed',
                { ...dataset, total_stf_files: m.total_stf_files },
                { id: deriveId(event, 'dataset-closed'), namespace: identity.namespace, cause: event },
              ),
            },
            logLine(agent, 'info', `run ${m.run_id}: dataset closed with ${m.total_stf_files} STF files`, {
              cause: event,
              purpose: 'closed',
              now: ctx.now,
              ...idsOf(ids),
            }),
          ];
        }
        default:
          return [];
      }
    },
  };
  return agent;
}

export const idsOf = (ids: { execution_id: string; run_id: string }): { executionId: string; runId: string } => ({
  executionId: ids.execution_id,
  runId: ids.run_id,
});
