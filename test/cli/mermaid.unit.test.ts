/** `swf machines export --format mermaid`: valid Mermaid pasted whole, DAQ states nested, where END_RUN goes. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exportMachines, machines, transitionSummary } from '../../src/machines/index.js';
import { checkStateDiagram } from '../helpers/mermaid.js';
import { swfIn } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'swf-mermaid-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DAQ_END_RUN = [
  '%% END_RUN: beam.not_ready → beam.not_ready [runActive]; beam.ready → beam.not_ready; run.physics → beam.not_ready; run.standby → beam.not_ready',
];

describe('Mermaid export', () => {
  it('prints one diagram that is valid pasted whole, a %% comment naming each file', async () => {
    const r = await swfIn(dir, 'machines', 'export', '--format', 'mermaid');
    expect(r.code, r.err).toBe(0);
    const { states } = checkStateDiagram(r.out);
    expect(r.out.match(/stateDiagram-v2/g)).toHaveLength(1);
    expect(r.out).not.toMatch(/^\/\//m);
    for (const f of ['run.mmd', 'slice.mmd', 'daq.mmd']) expect(r.out).toMatch(new RegExp(`^  %% ${f}: `, 'm'));
    for (const name of ['run', 'slice', 'daq'])
      expect(states.get(`${name}_machine`)).toMatchObject({ composite: true, parent: undefined });
    // The same state name in two machines is two states.
    expect(states.get('run_completed')?.parent).toBe('run_machine');
    expect(states.get('slice_completed')?.parent).toBe('slice_machine');
  });

  it('draws the nested DAQ states nested: composite states holding their substates', async () => {
    const r = await swfIn(dir, 'machines', 'export', '--format', 'mermaid');
    const { states, arrows } = checkStateDiagram(r.out);
    for (const [parent, children] of [
      ['daq_no_beam', ['daq_no_beam_not_ready']],
      ['daq_beam', ['daq_beam_not_ready', 'daq_beam_ready']],
      ['daq_run', ['daq_run_physics', 'daq_run_standby']],
    ] as const) {
      expect(states.get(parent)).toMatchObject({ composite: true, parent: 'daq_machine' });
      for (const c of children) expect(states.get(c)).toMatchObject({ composite: false, parent });
    }
    // An arrow that leaves a composite state starts at its border and names the exact states.
    expect(arrows).toContain('daq_run --> daq_beam : END_RUN / endRun (run.physics → beam.not_ready)');
    expect(arrows).toContain('daq_run --> daq_beam : END_RUN / endRun (run.standby → beam.not_ready)');
    expect(arrows).toContain('daq_beam_ready --> daq_beam_not_ready : END_RUN / endRun');
  });

  it('says which END_RUN goes where: each source state of the DAQ machine and its target', async () => {
    const rows = transitionSummary(machines.daq)
      .filter((t) => t.event === 'END_RUN')
      .map((t) => [t.from, t.to, t.guard ?? '']);
    expect(rows).toEqual([
      ['beam.not_ready', 'beam.not_ready', 'runActive'],
      ['beam.ready', 'beam.not_ready', ''],
      ['run.physics', 'beam.not_ready', ''],
      ['run.standby', 'beam.not_ready', ''],
    ]);
    const r = await swfIn(dir, 'machines', 'export', '--format', 'mermaid');
    for (const line of DAQ_END_RUN) expect(r.out).toContain(line);
    const docs = readFileSync(new URL('../../docs/machines.md', import.meta.url), 'utf8');
    expect(docs).toContain('| END_RUN | run.standby | beam.not_ready |  |');
  });

  it('writes each machine as a diagram of its own with --out, each valid', async () => {
    for (const f of exportMachines('mermaid')) expect(() => checkStateDiagram(f.content), f.filename).not.toThrow();
    const out = join(dir, 'out');
    const r = await swfIn(dir, 'machines', 'export', '--format', 'mermaid', '--out', out);
    expect(r.code, r.err).toBe(0);
    const daq = readFileSync(join(out, 'daq.mmd'), 'utf8');
    expect(checkStateDiagram(daq).states.get('daq_beam')?.composite).toBe(true);
    expect(daq).toContain(DAQ_END_RUN[0]!.replace('%%', '  %%').trimStart());
  });

  it('the check refuses what Mermaid refuses', () => {
    const bad = [
      '// run.mmd\nstateDiagram-v2\n  [*] --> a', // another syntax's comment
      'stateDiagram-v2\n  state "a" as a\n  [*] --> a\nstateDiagram-v2\n  state "b" as b', // two diagrams
      'stateDiagram-v2\n  state "b" as b {\n    state "c" as c\n    [*] --> c\n  }\n  state "d" as d\n  c --> d', // across blocks
      'stateDiagram-v2\n  state "b" as b {\n    state "c" as c\n  }', // a composite state without a start
      'stateDiagram-v2\n  state "a" as a\n  state "a" as a', // declared twice
      'stateDiagram-v2\n  state "a" as a {\n  [*] --> a', // not closed
    ];
    for (const text of bad) expect(() => checkStateDiagram(text), text).toThrow();
  });
});
