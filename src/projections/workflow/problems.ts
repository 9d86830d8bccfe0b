/** `workflow_problems`: what the agents refused or rejected, and the events the projection found invalid. */
import {
  executionIdOf,
  namespaceOf,
  NO_WRITES,
  type ProjectedEvent,
  type ProjectionPart,
  runNumberOf,
  type Write,
} from '../projection.js';
import { json, type WorkflowState } from './state.js';

const INSERT = `INSERT INTO workflow_problems (position, type, execution_id, run_number, namespace, agent, reason,
  created_at, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (position) DO NOTHING`;

const problem = (e: ProjectedEvent, type: string, agent: string | undefined, reason: string): Write[] => [
  {
    sql: INSERT,
    params: [
      Number(e.position),
      type,
      executionIdOf(e) ?? null,
      runNumberOf(e) ?? null,
      namespaceOf(e) ?? null,
      agent ?? null,
      reason,
      e.time,
      json(e.data),
    ],
  },
];

export function evolveProblems(e: ProjectedEvent): readonly Write[] {
  if (e.invalid !== undefined)
    return problem(e, 'InvalidEvent', undefined, `${e.type} at position ${e.position}: ${e.invalid}`);
  const p = e.parsed;
  if (p?.kind !== 'domain') return NO_WRITES;
  switch (p.type) {
    case 'RunTransitionRefused':
      return problem(e, p.type, p.data.agent, `${p.data.msg_type} refused in ${p.data.state}: ${p.data.reason}`);
    case 'MessageRejected':
      return problem(e, p.type, p.data.agent, `${p.data.original_type} rejected: ${p.data.reason}`);
    case 'BrokerMessageRejected':
      return problem(
        e,
        p.type,
        'gateway',
        `${p.data.destination} frame ${p.data.message_id} rejected: ${p.data.reason}`,
      );
    default:
      return NO_WRITES;
  }
}

export const problemsPart: ProjectionPart<WorkflowState> = {
  evolve: evolveProblems,
  invalid: true,
  domainEvents: ['RunTransitionRefused', 'MessageRejected', 'BrokerMessageRejected'],
};
