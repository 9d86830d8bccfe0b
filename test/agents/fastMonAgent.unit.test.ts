import { describe, expect, it } from 'vitest';
import { fastMonAgent } from '../../src/agents/fastMonAgent.js';
import { simulateStf, stfFilename, type TfFileRegistered } from '../../src/messages/index.js';
import { AgentUnderTest, config, executionStarted, EXECUTION, message, NAMESPACE, RUN } from './harness.js';

/** The data agent's answer to the STF with this sequence. */
const stfReady = (sequence: number, execution = EXECUTION) => {
  const filename = stfFilename(RUN, sequence);
  return message({
    msg_type: 'stf_ready',
    namespace: NAMESPACE,
    sender: 'data-agent-test',
    execution_id: execution,
    run_id: RUN,
    created_at: '2026-01-15T11:00:20.000Z',
    filename,
    sequence,
    ...simulateStf(filename),
  });
};

/** FastMon, given the execution with these overrides. */
const fastMon = (...set: string[]): AgentUnderTest =>
  new AgentUnderTest(fastMonAgent({ name: 'fastmon-agent-test', type: 'fastmon', namespace: NAMESPACE })).given(
    executionStarted(config(...set)),
  );

/** The STF sequences FastMon sampled out of 1..n. */
function sampled(n: number, rate: number): number[] {
  const agent = fastMon(`fast_processing.stf_sampling_rate=${rate}`);
  const hits: number[] = [];
  for (let k = 1; k <= n; k++) if (agent.when(stfReady(k)).outputs.length > 0) hits.push(k);
  return hits;
}

describe('FastMon agent', () => {
  it.each([
    [10, 1.0],
    [10, 0.3],
    [7, 0.25],
    [100, 0.1],
    [33, 0.333333],
    [20, 0.05],
    [10, 0],
  ])('samples exactly floor(n·R) of %i STFs at rate %f', (n, rate) => {
    const hits = sampled(n, rate);
    expect(hits).toHaveLength(Math.floor((n * Math.round(rate * 1_000_000)) / 1_000_000));
  });

  it('spreads the sampled STFs evenly: at rate 0.25 every fourth', () => {
    expect(sampled(12, 0.25)).toEqual([4, 8, 12]);
  });

  it('registers 7 TF samples per sampled STF, each holding at least slices_per_sample TFs', () => {
    const then = fastMon().when(stfReady(1));
    then.appends(...Array<string>(7).fill('tf_file_registered'));
    const samples = then.data<TfFileRegistered>('tf_file_registered');
    expect(samples.map((s) => s.tf_filename)).toEqual(
      [1, 2, 3, 4, 5, 6, 7].map((i) => `swf.${RUN}.000001_tf_00${i}.tf`),
    );
    for (const [i, s] of samples.entries()) {
      expect(s).toMatchObject({ stf_filename: stfFilename(RUN, 1), execution_id: EXECUTION, run_id: RUN });
      expect(s.tf_count).toBeGreaterThanOrEqual(15);
      expect(s.tf_last - s.tf_first + 1).toBe(s.tf_count);
      // Sample i comes from partition i of the STF's 1000 TFs (142 each, the last takes the rest).
      expect(s.tf_first).toBeGreaterThanOrEqual(i * 142);
      expect(s.tf_last).toBeLessThanOrEqual(i === 6 ? 999 : i * 142 + 141);
    }
    expect(then.outputs.every((o) => o.stream === `fastmon-${RUN}`)).toBe(true);
  });

  it('honours tf_files_per_stf and slices_per_sample', () => {
    const then = fastMon('fast_processing.tf_files_per_stf=3', 'fast_processing.slices_per_sample=40').when(
      stfReady(1),
    );
    const samples = then.data<TfFileRegistered>('tf_file_registered');
    expect(samples).toHaveLength(3);
    for (const s of samples) expect(s.tf_count).toBeGreaterThanOrEqual(40);
  });

  it('draws the same samples for the same seed, and other samples for another seed', () => {
    const ranges = (agent: AgentUnderTest, k: number) =>
      agent
        .when(stfReady(k))
        .data<TfFileRegistered>('tf_file_registered')
        .map((s) => [s.tf_first, s.tf_last]);
    const a = fastMon('fast_processing.seed=7');
    const b = fastMon('fast_processing.seed=7');
    const c = fastMon('fast_processing.seed=8');
    for (const k of [1, 2, 3]) {
      expect(ranges(b, k)).toEqual(ranges(a, k));
    }
    expect(ranges(c, 1)).not.toEqual(ranges(fastMon('fast_processing.seed=7'), 1));
  });

  it('draws different samples for different STFs of the same run', () => {
    const agent = fastMon();
    const first = agent.when(stfReady(1)).data<TfFileRegistered>('tf_file_registered');
    const second = agent.when(stfReady(2)).data<TfFileRegistered>('tf_file_registered');
    expect(second.map((s) => s.tf_first)).not.toEqual(first.map((s) => s.tf_first));
  });

  it('records a MessageRejected, and carries on, for an stf_ready whose execution it never saw', () => {
    // A well-formed message naming an unknown execution must not stop the agent (it would stop the run, and
    // stop it again on every restart, since the agent would meet the same event after its checkpoint).
    const agent = fastMon();
    const then = agent.when(stfReady(1, 'fast_processing-nobody-0099'));
    expect(then.types).toContain('MessageRejected');
    expect(agent.when(stfReady(2)).outputs).toHaveLength(7);
  });
});
