/** `workflow_executions`: an execution's start, parameters, stop request and end. */
import { NO_WRITES, type ProjectedEvent, type ProjectionPart, type Write } from '../projection.js';
import { json, paramsOf, type WorkflowState } from './state.js';

const INSERT = `INSERT INTO workflow_executions (execution_id, workflow_name, namespace, parameter_values, status,
  start_time, executed_by, machine_hash, machine_definitions, position)
  VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?) ON CONFLICT (execution_id) DO NOTHING`;
const FINISH = `UPDATE workflow_executions SET status = ?, end_time = ?, reason = ? WHERE execution_id = ?`;
const STOP_REQUESTED = `UPDATE workflow_executions SET stop_requested_at = ? WHERE execution_id = ?`;

export function evolveExecutions(e: ProjectedEvent, state: WorkflowState): readonly Write[] {
  const p = e.parsed;
  if (p?.kind !== 'domain') return NO_WRITES;
  switch (p.type) {
    case 'WorkflowExecutionStarted': {
      const d = p.data;
      state.executions.keep(d.execution_id, paramsOf(d.parameter_values));
      return [
        {
          sql: INSERT,
          params: [
            d.execution_id,
            d.workflow_name,
            d.namespace,
            json(d.parameter_values),
            d.start_time,
            d.executed_by,
            d.machine_hash,
            json(d.machine_definitions),
            Number(e.position),
          ],
        },
      ];
    }
    case 'WorkflowExecutionFinished':
      return [{ sql: FINISH, params: [p.data.status, p.data.end_time, p.data.reason ?? null, p.data.execution_id] }];
    case 'StopRequested':
      return [{ sql: STOP_REQUESTED, params: [p.data.requested_at, p.data.execution_id] }];
    default:
      return NO_WRITES;
  }
}

export const executionsPart: ProjectionPart<WorkflowState> = {
  evolve: evolveExecutions,
  domainEvents: ['WorkflowExecutionStarted', 'WorkflowExecutionFinished', 'StopRequested'],
};
