/**
 * The FastMon agent (DESIGN.md semantics 4): samples STFs at `stf_sampling_rate` (in integers, so exactly
 * floor(n·R) of n are sampled) and registers `tf_files_per_stf` TF samples per sampled STF, from a PRNG keyed by
 * (seed, STF name): one `tf_file_registered` each.
 */
import { NotFoundError } from '../errors.js';
import type { StoredEvent } from '../eventStore/eventStore.js';
import { isStfSampled, type ParsedEvent, rateToMillionths, sampleTfs, STREAM_PREFIXES } from '../messages/index.js';
import { common, ExecutionParameters, send } from './common.js';
import { type Agent, type AgentIdentity, type HandleContext, type Output } from './runtime.js';

export function fastMonAgent(identity: AgentIdentity): Agent {
  const parameters = new ExecutionParameters();
  const agent: Agent = {
    ...identity,
    streamPrefixes: [STREAM_PREFIXES.execution, STREAM_PREFIXES.data],
    handles: new Set(['WorkflowExecutionStarted', 'stf_ready']),
    stateful: true,
    handle(event: StoredEvent, parsed: ParsedEvent, ctx: HandleContext): Output[] {
      if (parsed.kind === 'domain') {
        if (parsed.type === 'WorkflowExecutionStarted') parameters.record(event);
        return [];
      }
      const m = parsed.message;
      if (m.msg_type !== 'stf_ready') return [];
      const config = parameters.get(m.execution_id);
      if (!config)
        throw new NotFoundError(
          `stf_ready for execution ${m.execution_id}, whose WorkflowExecutionStarted was never seen`,
        );
      const fp = config.fast_processing;
      if (!isStfSampled(m.sequence, rateToMillionths(fp.stf_sampling_rate))) return [];
      return sampleTfs(m.filename, fp).map((s, i) =>
        send(
          {
            msg_type: 'tf_file_registered',
            ...common(agent, m, ctx.now),
            tf_filename: s.tf_filename,
            stf_filename: m.filename,
            tf_count: s.tf_count,
            tf_first: s.tf_first,
            tf_last: s.tf_last,
            file_size_bytes: s.file_size_bytes,
            processed_by: agent.name,
            status: 'registered',
          },
          event,
          'tf_file_registered',
          i,
        ),
      );
    },
  };
  return agent;
}
