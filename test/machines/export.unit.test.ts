import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { assign, createMachine } from 'xstate';
import {
  exportMachine,
  exportMachines,
  fastRun,
  MACHINE_NAMES,
  machineDefinition,
  machineDefinitions,
  machineHash,
  refusalTable,
  runMachine,
  transitionSummary,
  updateMachineDocs,
  type ExportFormat,
} from '../../src/machines/index.js';

describe('machines export', () => {
  it.each(MACHINE_NAMES)('json of %s is the config createMachine loads, with actions and guards by name', (name) => {
    const json = exportMachine(name, 'json');
    const config = JSON.parse(json) as Record<string, unknown>;
    expect(config).toEqual(machineDefinition(name));
    expect(config.id).toBe(name);
    const loaded = createMachine(config as never);
    expect(Object.keys(loaded.root.states)).toEqual(Object.keys((config.states as object) ?? {}));
    expect(json).not.toContain('=>');
  });

  it('json keeps guard and action names with their params', () => {
    const def = machineDefinition('slice') as { states: { processing: { on: { FAIL: unknown[] } } } };
    expect(def.states.processing.on.FAIL[0]).toEqual({
      guard: 'canRetry',
      target: 'queued',
      actions: ['retry', 'requeueSlice'],
    });
  });

  it.each(MACHINE_NAMES)('ts of %s is createMachine({...}) code with the same definition', (name) => {
    const ts = exportMachine(name, 'ts');
    expect(ts).toContain("import { createMachine } from 'xstate';");
    const body = ts.slice(ts.indexOf('createMachine(') + 'createMachine('.length, ts.lastIndexOf(');'));
    expect(JSON.parse(body)).toEqual(machineDefinition(name));
  });

  it('mermaid is a stateDiagram-v2 with every leaf state and no refusal arrows', () => {
    const m = exportMachine('run', 'mermaid');
    expect(m.startsWith('stateDiagram-v2\n')).toBe(true);
    for (const s of fastRun.states) expect(m).toContain(s);
    expect(m).toContain('run_standby --> run_physics : RESUME_RUN / recordResume');
    expect(m).not.toContain('refuse');
    const daq = exportMachine('daq', 'mermaid');
    expect(daq).toContain('state "ready" as daq_beam_ready');
    expect(daq).toContain('daq_beam --> daq_run : START_RUN / startPhysics (beam.ready → run.physics)');
    expect(exportMachine('slice', 'mermaid')).toContain('slice_completed --> [*]');
  });

  it('writes one file per machine per format', () => {
    const names = (f: ExportFormat) => exportMachines(f).map((x) => x.filename);
    expect(names('json')).toEqual(['run.json', 'slice.json', 'daq.json']);
    expect(names('ts')).toEqual(['run.ts', 'slice.ts', 'daq.ts']);
    expect(names('mermaid')).toEqual(['run.mmd', 'slice.mmd', 'daq.mmd']);
    expect(() => exportMachines('yaml' as ExportFormat)).toThrow(/unknown export format/);
    expect(() => exportMachine('nope' as 'run', 'json')).toThrow(/unknown machine/);
  });

  it('hashes the definitions stably, independent of key order, and changes when a rule changes', () => {
    const defs = machineDefinitions();
    expect(machineHash()).toMatch(/^[0-9a-f]{64}$/);
    expect(machineHash(defs)).toBe(machineHash());
    const reordered = Object.fromEntries(Object.entries(defs).reverse());
    expect(machineHash(reordered)).toBe(machineHash());
    const changed = JSON.parse(JSON.stringify(defs)) as { slice: { initial: string } };
    changed.slice.initial = 'processing';
    expect(machineHash(changed)).not.toBe(machineHash());
  });

  it('lists every refusal with its state and reason', () => {
    const rows = refusalTable(runMachine);
    expect(rows).toContainEqual({
      state: 'standby',
      event: 'STF_GEN',
      reason: 'stf_gen during standby: data taking is paused',
      otherwise: false,
    });
    expect(rows).toContainEqual(
      expect.objectContaining({ state: 'any state', event: 'SLICE_STARTED', otherwise: true }),
    );
    expect(rows.every((r) => r.reason.length > 0)).toBe(true);
  });

  it('names inline actions and guards in the summary: XState built-ins by their type, functions as (inline)', () => {
    const m = createMachine({
      id: 'm',
      context: { n: 0 },
      initial: 'a',
      states: {
        a: { on: { GO: { target: 'b', guard: () => true, actions: [assign({ n: 1 }), () => undefined, 'named'] } } },
        b: { on: { BACK: { target: 'a', guard: { type: 'ok', params: { x: 1 } } } } },
      },
    });
    expect(transitionSummary(m)).toEqual([
      { event: 'GO', from: 'a', to: 'b', guard: '(inline)', actions: ['xstate.assign', '(inline)', 'named'] },
      { event: 'BACK', from: 'b', to: 'a', guard: 'ok', actions: [] },
    ]);
  });

  it('docs/machines.md carries the diagrams generated from the machines', () => {
    const path = fileURLToPath(new URL('../../docs/machines.md', import.meta.url));
    const current = readFileSync(path, 'utf8');
    const expected = updateMachineDocs(current);
    // Regenerate with: SWF_UPDATE_DOCS=1 npx vitest run test/machines/export.unit.test.ts
    if (process.env.SWF_UPDATE_DOCS === '1' && current !== expected) writeFileSync(path, expected);
    else
      expect(
        current,
        'docs/machines.md is stale: run SWF_UPDATE_DOCS=1 npx vitest run test/machines/export.unit.test.ts',
      ).toBe(expected);
  });
});
