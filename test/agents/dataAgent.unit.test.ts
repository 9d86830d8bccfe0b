import { describe, expect, it } from 'vitest';
import { dataAgent } from '../../src/agents/dataAgent.js';
import { simulateStf } from '../../src/messages/index.js';
import { AgentUnderTest, daq, EXECUTION, NAMESPACE, RUN } from './harness.js';

const agent = (): AgentUnderTest =>
  new AgentUnderTest(dataAgent({ name: 'data-agent-test', type: 'DATA', namespace: NAMESPACE }));

describe('data agent', () => {
  it('opens the run dataset on run_imminent', () => {
    const then = agent().when(daq.runImminent()).appends('DatasetOpened', 'agent_log');
    expect(then.outputs[0]!.stream).toBe(`data-${RUN}`);
    expect(then.data('DatasetOpened')).toEqual([
      { run_id: RUN, execution_id: EXECUTION, namespace: NAMESPACE, dataset: `swf.${RUN}.run` },
    ]);
    expect(then.data<{ message: string }>('agent_log')[0]!.message).toMatch(/dataset swf\.100010\.run opened/);
  });

  it('answers stf_gen with stf_ready carrying a size and checksum simulated from the file name', () => {
    const then = agent().given(daq.runImminent(), daq.startRun()).when(daq.stfGen(3)).appends('stf_ready');
    const ready = then.data('stf_ready')[0]!;
    const name = `swf.${RUN}.000003.stf`;
    expect(ready).toMatchObject({
      msg_type: 'stf_ready',
      filename: name,
      sequence: 3,
      namespace: NAMESPACE,
      execution_id: EXECUTION,
      run_id: RUN,
      sender: 'data-agent-test',
      processed_by: 'data-agent-test',
      ...simulateStf(name),
    });
    expect(ready.checksum).toMatch(/^ad:[0-9a-f]{8}$/);
    expect(ready.size_bytes).toBeGreaterThanOrEqual(1_800_000_000);
    expect(ready.size_bytes).toBeLessThanOrEqual(2_200_000_000);
    expect(then.outputs[0]!.stream).toBe(`data-${RUN}`);
    expect(then.outputs[0]!.event.metadata).toMatchObject({ destination: '/topic/epictopic', runNumber: Number(RUN) });
  });

  it('gives the same STF the same size and checksum every time, and another STF others', () => {
    const stf = daq.stfGen(1);
    const first = agent().when(stf).outputs[0]!;
    const again = agent().when(stf).outputs[0]!;
    expect(again.event.id).toBe(first.event.id);
    const pick = (d: unknown) => {
      const { checksum, size_bytes } = d as { checksum: string; size_bytes: number };
      return { checksum, size_bytes };
    };
    expect(pick(again.event.data)).toEqual(pick(first.event.data));
    const other = agent().when(daq.stfGen(2)).outputs[0]!;
    expect(pick(other.event.data).checksum).not.toBe(pick(first.event.data).checksum);
  });

  it('derives each output id from its input event, so a re-run appends nothing new', () => {
    const a = agent();
    const stf = a.log.store(`run-${RUN}`, daq.stfGen(1));
    const ids = a.decide(stf).map((o) => o.event.id);
    expect(a.decide(stf).map((o) => o.event.id)).toEqual(ids);
    expect(ids[0]).not.toBe(stf.id);
  });

  it('closes the dataset on end_run with the total number of STF files', () => {
    const then = agent().given(daq.runImminent(), daq.startRun(), daq.stfGen(1)).when(daq.endRun(1));
    then.appends('DatasetClosed', 'agent_log');
    expect(then.data('DatasetClosed')).toEqual([
      { run_id: RUN, execution_id: EXECUTION, namespace: NAMESPACE, dataset: `swf.${RUN}.run`, total_stf_files: 1 },
    ]);
  });

  it('passes over the lifecycle messages it has nothing to do for', () => {
    agent().when(daq.startRun()).nothing();
    agent().when(daq.pauseRun()).nothing();
  });
});
