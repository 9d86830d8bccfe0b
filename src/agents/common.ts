/** Pieces the agents share: message envelopes, execution parameters folded from the log. */
import type { StoredEvent } from '../eventStore/eventStore.js';
import { parseConfig, type Config } from '../config/index.js';
import { deriveId, messageEvent, type Message, streamForMessage } from '../messages/index.js';
import type { AgentIdentity, Output } from './runtime.js';

/** A message caused by `cause`, with an id derived from the cause and `purpose` (and any further parts). */
export function send<M extends Message>(
  message: M,
  cause: { id: string; metadata?: unknown; revision?: bigint },
  ...purpose: (string | number)[]
): Output {
  return {
    stream: streamForMessage(message),
    event: messageEvent(message, { id: deriveId(cause, ...purpose), cause }),
  };
}

/** The fields every message of ours carries. */
export function common(
  agent: AgentIdentity,
  ids: { execution_id: string; run_id: string },
  now: string,
): { namespace: string; sender: string; execution_id: string; run_id: string; created_at: string } {
  return {
    namespace: agent.namespace,
    sender: agent.name,
    execution_id: ids.execution_id,
    run_id: ids.run_id,
    created_at: now,
  };
}

/**
 * Each execution's configuration, folded from its WorkflowExecutionStarted event: the agents read their
 * parameters from the execution's `parameter_values`, as the testbed's agents GET them from the monitor.
 */
export class ExecutionParameters {
  private readonly configs = new Map<string, Config>();

  /** Feeds a WorkflowExecutionStarted event. */
  record(event: StoredEvent): void {
    const d = event.data as { execution_id: string; parameter_values: unknown };
    this.configs.set(d.execution_id, parseConfig(d.parameter_values, `execution ${d.execution_id} parameter_values`));
  }

  get(executionId: string): Config | undefined {
    return this.configs.get(executionId);
  }
}
