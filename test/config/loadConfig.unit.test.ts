import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  daqParameters,
  findPackageDir,
  loadConfig,
  parseConfig,
  type LoadConfigOptions,
} from '../../src/config/index.js';
import { NotFoundError, ValidationError } from '../../src/errors.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Given a folder with these files (paths relative to it). */
function givenFolder(files: Record<string, string> = {}): string {
  const root = mkdtempSync(join(tmpdir(), 'swf-config-'));
  dirs.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

/** A project folder (cwd) and an isolated package folder, so only these files are found. */
function givenProject(cwdFiles: Record<string, string>, packageFiles: Record<string, string> = {}) {
  const cwd = givenFolder(cwdFiles);
  const packageDir = givenFolder(packageFiles);
  return (options: LoadConfigOptions = {}) => loadConfig({ cwd, packageDir, ...options });
}

const TESTBED = '[testbed]\nnamespace = "ns1"\n';
const MAIN = `[workflow]\nname = "wf"\nincludes = ["daq_state_machine.toml"]\n\n[fast_processing]\nstf_count = 10\nphysics_period_count = 1\n`;
const DAQ = '[daq_state_machine]\nstf_interval = 2.0\nphysics_period_count = 2\n';

/** Expects `fn` to throw a ValidationError whose details include `details` and whose message matches. */
function expectInvalid(fn: () => unknown, message: RegExp, details: Record<string, string> = {}): void {
  let error: unknown;
  try {
    fn();
  } catch (e: unknown) {
    error = e;
  }
  expect(error).toBeInstanceOf(ValidationError);
  expect((error as ValidationError).message).toMatch(message);
  expect((error as ValidationError).details).toMatchObject(details);
}

describe('loadConfig: the shipped configuration', () => {
  it('loads fast_processing_default with its include and the shipped testbed file', () => {
    const { config, sources, parameterValues } = loadConfig({ cwd: givenFolder() });
    expect(config.workflow.name).toBe('fast_processing');
    expect(config.testbed.namespace).toBe('swf-es');
    expect(config.fast_processing).toMatchObject({
      stf_count: 10,
      physics_period_count: 1,
      target_worker_count: 30,
      stf_sampling_rate: 1,
      slices_per_sample: 15,
      slice_processing_time: 30,
      worker_rampup_time: 300,
      worker_rampdown_time: 60,
      tf_files_per_stf: 7,
      tf_count_per_stf: 1000,
      tf_size_fraction: 0.15,
      worker_failure_rate: 0,
      seed: 1,
      slice_lease_factor: 3,
      max_slice_retries: 3,
    });
    expect(config.daq_state_machine).toMatchObject({ stf_interval: 2, physics_period_count: 2, standby_duration: 2 });
    expect(sources.workflow).toBe(join(findPackageDir(), 'workflows', 'fast_processing_default.toml'));
    expect(sources.includes).toEqual([join(findPackageDir(), 'workflows', 'daq_state_machine.toml')]);
    expect(sources.testbed).toBe(join(findPackageDir(), 'workflows', 'testbed.toml'));
    expect(JSON.parse(JSON.stringify(parameterValues))).toEqual(JSON.parse(JSON.stringify(config)));
  });

  it('gives the DAQ one physics period of 10 STFs (fast_processing laid over daq_state_machine)', () => {
    const daq = daqParameters(loadConfig({ cwd: givenFolder() }).config);
    expect(daq).toMatchObject({ stf_count: 10, physics_period_count: 1, stf_interval: 2, beam_ready_delay: 2 });
  });

  it('finds the package folder by its package.json name', () => {
    expect(findPackageDir()).toMatch(/./);
  });
});

describe('loadConfig: finding files', () => {
  it('looks in ./workflows first, then in the package', () => {
    const load = givenProject(
      { 'workflows/wf.toml': MAIN.replace('stf_count = 10', 'stf_count = 3'), 'workflows/testbed.toml': TESTBED },
      { 'workflows/wf.toml': MAIN, 'workflows/daq_state_machine.toml': DAQ },
    );
    const { config, sources } = load({ name: 'wf' });
    expect(config.fast_processing.stf_count).toBe(3);
    expect(sources.includes[0]).toMatch(/daq_state_machine\.toml$/);
    expect(config.daq_state_machine.physics_period_count).toBe(2);
  });

  it('accepts NAME, NAME.toml and NAME_default.toml', () => {
    const load = givenProject({
      'workflows/fast_processing_default.toml': MAIN,
      'workflows/daq_state_machine.toml': DAQ,
      'workflows/testbed.toml': TESTBED,
    });
    for (const name of ['fast_processing', 'fast_processing_default', 'fast_processing_default.toml']) {
      expect(load({ name }).sources.workflow).toMatch(/fast_processing_default\.toml$/);
    }
    expect(load().sources.workflow).toMatch(/fast_processing_default\.toml$/);
  });

  it('takes a path relative to the working folder', () => {
    const load = givenProject({
      'configs/mine.toml': MAIN,
      'workflows/daq_state_machine.toml': DAQ,
      'workflows/testbed.toml': TESTBED,
    });
    expect(load({ name: './configs/mine.toml' }).config.workflow.name).toBe('wf');
    expect(load({ path: 'configs/mine.toml' }).config.workflow.name).toBe('wf');
  });

  it('says where it looked when a configuration is missing', () => {
    const load = givenProject({ 'workflows/testbed.toml': TESTBED });
    expect(() => load({ name: 'nope' })).toThrow(NotFoundError);
    expect(() => load({ name: 'nope' })).toThrow(/nope.*not found; looked for .*nope_default\.toml/);
    expect(() => load({ testbed: 'other.toml' })).toThrow(/testbed configuration 'other.toml' not found/);
  });

  it('takes the testbed file from --testbed, else SWF_TESTBED_CONFIG, else testbed.toml', () => {
    const load = givenProject({
      'workflows/wf.toml': MAIN,
      'workflows/daq_state_machine.toml': DAQ,
      'workflows/testbed.toml': TESTBED,
      'workflows/env.toml': '[testbed]\nnamespace = "from-env"\n',
      'cli.toml': '[testbed]\nnamespace = "from-cli"\n',
    });
    expect(load({ name: 'wf' }).config.testbed.namespace).toBe('ns1');
    const env = { SWF_TESTBED_CONFIG: 'env.toml' };
    expect(load({ name: 'wf', env }).config.testbed.namespace).toBe('from-env');
    expect(load({ name: 'wf', env, testbed: './cli.toml' }).config.testbed.namespace).toBe('from-cli');
  });

  it("uses the testbed file's [workflow] config when no configuration is named", () => {
    const load = givenProject({
      'workflows/other.toml': MAIN.replace('name = "wf"', 'name = "other"'),
      'workflows/daq_state_machine.toml': DAQ,
      'workflows/testbed.toml': `${TESTBED}\n[workflow]\nconfig = "other"\n`,
    });
    expect(load().sources.workflow).toMatch(/other\.toml$/);
  });
});

describe('loadConfig: precedence', () => {
  const base = { 'workflows/wf.toml': MAIN, 'workflows/daq_state_machine.toml': DAQ };

  it('adds an included section only where the main file has none', () => {
    const load = givenProject({
      ...base,
      'workflows/daq_state_machine.toml': `${DAQ}\n[fast_processing]\nstf_count = 99\nseed = 5\n`,
      'workflows/testbed.toml': TESTBED,
    });
    const { config } = load({ name: 'wf' });
    expect(config.fast_processing.stf_count).toBe(10);
    expect(config.fast_processing.seed).toBe(1);
  });

  it('lets the first include win over a later one, and follows nested includes', () => {
    const load = givenProject({
      'workflows/wf.toml': '[workflow]\nname = "wf"\nincludes = ["a.toml", "b.toml"]\n',
      'workflows/a.toml': '[workflow]\nname = "a"\nincludes = ["c.toml"]\n\n[daq_state_machine]\nstf_interval = 1.0\n',
      'workflows/b.toml': '[daq_state_machine]\nstf_interval = 3.0\n\n[simulation]\nrealtime = true\n',
      'workflows/c.toml': '[fast_processing]\nseed = 7\n',
      'workflows/testbed.toml': TESTBED,
    });
    const { config, sources } = load({ name: 'wf' });
    expect(config.daq_state_machine.stf_interval).toBe(1);
    expect(config.simulation).toEqual({ realtime: true });
    expect(config.fast_processing.seed).toBe(7);
    expect(config.workflow.name).toBe('wf');
    expect(sources.includes.map((p) => p.split('/').pop())).toEqual(['a.toml', 'c.toml', 'b.toml']);
  });

  it('lays the testbed file over the workflow, key by key, including [workflow] and new sections', () => {
    const load = givenProject({
      ...base,
      'workflows/testbed.toml': `${TESTBED}\n[fast_processing]\nstf_count = 5\n\n[workflow]\nname = "stf_datataking"\n\n[agents.data]\nenabled = false\n`,
    });
    const { config } = load({ name: 'wf' });
    expect(config.fast_processing).toMatchObject({ stf_count: 5, physics_period_count: 1 });
    expect(config.workflow).toMatchObject({ name: 'stf_datataking', includes: ['daq_state_machine.toml'] });
    expect(config.agents).toEqual({ data: { enabled: false } });
  });

  it("replaces the testbed's [parameters] keys in every section that has them, but not in [workflow]", () => {
    const load = givenProject({
      ...base,
      'workflows/testbed.toml': `${TESTBED}\n[parameters]\nphysics_period_count = 3\nname = "x"\n`,
    });
    const { config } = load({ name: 'wf' });
    expect(config.fast_processing.physics_period_count).toBe(3);
    expect(config.daq_state_machine.physics_period_count).toBe(3);
    expect(config.workflow.name).toBe('wf');
    expect(config.parameters).toEqual({ physics_period_count: 3, name: 'x' });
  });

  it('lets --set win over every file, and set keys no file has', () => {
    const load = givenProject({ ...base, 'workflows/testbed.toml': `${TESTBED}\n[fast_processing]\nstf_count = 5\n` });
    const { config, sources } = load({
      name: 'wf',
      set: [
        'fast_processing.stf_count=3',
        'fast_processing.stf_sampling_rate=0.5',
        'daq_state_machine.stf_count=7',
        'testbed.namespace="quoted"',
        'agents.data.enabled=false',
        'workflow.description=bare words',
      ],
    });
    expect(config.fast_processing).toMatchObject({ stf_count: 3, stf_sampling_rate: 0.5 });
    expect(config.daq_state_machine.stf_count).toBe(7);
    expect(config.testbed.namespace).toBe('quoted');
    expect(config.agents).toEqual({ data: { enabled: false } });
    expect(config.workflow.description).toBe('bare words');
    expect(sources.sets).toHaveLength(6);
    // The DAQ reads fast_processing over daq_state_machine, as the testbed flattens.
    expect(daqParameters(config).stf_count).toBe(3);
  });

  it("keeps the broker's password out of the parameters an execution records", () => {
    const load = givenProject({
      ...base,
      'workflows/testbed.toml': `${TESTBED}\n[broker]\nurl = "stomp://mq:61613"\nuser = "swf"\npassword = "in-the-file"\n`,
    });
    const fromFile = load({ name: 'wf' });
    expect(fromFile.config.broker).toMatchObject({ user: 'swf', password: 'in-the-file' });
    expect(fromFile.parameterValues.broker).toMatchObject({ url: 'stomp://mq:61613', user: 'swf' });
    expect(JSON.stringify(fromFile.parameterValues)).not.toContain('in-the-file');
    const fromSet = load({ name: 'wf', set: ['broker.password="from-set"'] });
    expect(fromSet.config.broker?.password).toBe('from-set');
    expect(JSON.stringify(fromSet.parameterValues)).not.toContain('from-set');
  });
});

describe('loadConfig: bad configurations name the file, section and key', () => {
  const base = {
    'workflows/wf.toml': MAIN,
    'workflows/daq_state_machine.toml': DAQ,
    'workflows/testbed.toml': TESTBED,
  };

  it('rejects a wrong type', () => {
    const load = givenProject({ ...base, 'workflows/wf.toml': MAIN.replace('stf_count = 10', 'stf_count = "ten"') });
    expectInvalid(() => load({ name: 'wf' }), /wf\.toml: \[fast_processing\] stf_count: expected number/, {
      section: 'fast_processing',
      key: 'stf_count',
    });
  });

  it('rejects a rate outside 0..1 and a negative count', () => {
    const load = givenProject(base);
    expectInvalid(
      () => load({ name: 'wf', set: ['fast_processing.stf_sampling_rate=1.5'] }),
      /\[fast_processing\] stf_sampling_rate: must be between 0 and 1/,
      { file: '--set fast_processing.stf_sampling_rate=1.5', key: 'stf_sampling_rate' },
    );
    expectInvalid(
      () => load({ name: 'wf', set: ['fast_processing.worker_failure_rate=-0.1'] }),
      /worker_failure_rate: must be between 0 and 1/,
    );
    expectInvalid(
      () => load({ name: 'wf', set: ['daq_state_machine.physics_period_count=-1'] }),
      /must be between 0 and 10000/,
      {
        section: 'daq_state_machine',
        key: 'physics_period_count',
      },
    );
    expectInvalid(() => load({ name: 'wf', set: ['fast_processing.max_slice_retries=1.5'] }), /must be an integer/);
  });

  it('rejects an unknown key in a file, naming that file', () => {
    const load = givenProject({ ...base, 'workflows/daq_state_machine.toml': `${DAQ}stf_intervall = 1\n` });
    expectInvalid(
      () => load({ name: 'wf' }),
      /daq_state_machine\.toml: \[daq_state_machine\] stf_intervall: unknown key/,
      {
        section: 'daq_state_machine',
        key: 'stf_intervall',
      },
    );
  });

  it('rejects an unknown section', () => {
    const load = givenProject({ ...base, 'workflows/testbed.toml': `${TESTBED}\n[fast_procesing]\nstf_count = 1\n` });
    expectInvalid(() => load({ name: 'wf' }), /testbed\.toml: \[fast_procesing\]: unknown section/, {
      section: 'fast_procesing',
    });
  });

  it('rejects an empty or missing [testbed] namespace', () => {
    expectInvalid(
      () => givenProject({ ...base, 'workflows/testbed.toml': '[testbed]\nnamespace = ""\n' })({ name: 'wf' }),
      /testbed\.toml: \[testbed\] namespace: must not be empty/,
      { section: 'testbed', key: 'namespace' },
    );
    expectInvalid(
      () => givenProject({ ...base, 'workflows/testbed.toml': '# nothing\n' })({ name: 'wf' }),
      /\[testbed\]: is missing/,
      { section: 'testbed' },
    );
  });

  it('rejects sampling that cannot fill every slice of a sample', () => {
    expectInvalid(
      () => givenProject(base)({ name: 'wf', set: ['fast_processing.slices_per_sample=200'] }),
      /slices_per_sample: must be <= 142/,
    );
    expectInvalid(
      () => givenProject(base)({ name: 'wf', set: ['fast_processing.tf_files_per_stf=2000'] }),
      /tf_files_per_stf: must not exceed tf_count_per_stf/,
    );
  });

  it('reports TOML syntax errors with the file, line and column', () => {
    const load = givenProject({ ...base, 'workflows/wf.toml': '[workflow]\nname = "wf\n' });
    expectInvalid(() => load({ name: 'wf' }), /wf\.toml:2:\d+: invalid TOML/);
  });

  it('rejects --set of an unknown section or key, or without a value', () => {
    const load = givenProject(base);
    expectInvalid(
      () => load({ name: 'wf', set: ['fast_processing.stf_cont=3'] }),
      /unknown key 'stf_cont' in \[fast_processing\]/,
      {
        file: '--set',
        section: 'fast_processing',
        key: 'stf_cont',
      },
    );
    expectInvalid(() => load({ name: 'wf', set: ['nosuch.key=3'] }), /unknown section \[nosuch\]/);
    expectInvalid(() => load({ name: 'wf', set: ['fast_processing.stf_count'] }), /expected section\.key=value/);
    expectInvalid(() => load({ name: 'wf', set: ['stf_count=3'] }), /expected section\.key=value/);
    expectInvalid(
      () => load({ name: 'wf', set: ['agents.data.colour=1'] }),
      /unknown key 'colour' in \[agents\.data\]/,
    );
  });

  it('rejects includes that are not a list of names', () => {
    const load = givenProject({ ...base, 'workflows/wf.toml': '[workflow]\nname = "wf"\nincludes = "daq.toml"\n' });
    expectInvalid(() => load({ name: 'wf' }), /\[workflow\] includes: must be a list/, { key: 'includes' });
  });
});

describe("loadConfig: the Python testbed's own files", () => {
  it('loads its testbed.toml, fast_processing_default.toml and stf_datataking_default.toml', () => {
    const load = givenProject({
      'workflows/daq_state_machine.toml': DAQ,
      'workflows/testbed.toml': `[testbed]\nnamespace = "torre1"\n\n[agents.data]\nenabled = false\nscript = "example_agents/example_data_agent.py"\n\n[agents.processing]\nenabled = true\nscript = "example_agents/example_processing_agent.py"\n\n[workflow]\nname = "stf_datataking"\nconfig = "fast_processing_default"\nrealtime = true\n`,
      'workflows/fast_processing_default.toml': `[testbed]\nnamespace = "wguan2"\n\n[workflow]\nname = "fast_processing"\nversion = "1.0"\ndescription = "Fast processing of TF slices by PanDA/iDDS"\nincludes = ["daq_state_machine.toml"]\n\n[agents.fast_processing]\nenabled = true\nscript = "example_agents/fast_processing_agent.py"\n\n[fast_processing]\nstf_count = 10\nphysics_period_count = 1\ntarget_worker_count = 30\nstf_sampling_rate = 1.0\nslices_per_sample = 15\nslice_processing_time = 30\nworker_rampup_time = 300\nworker_rampdown_time = 60\n`,
      'workflows/stf_datataking_default.toml': `[workflow]\nname = "stf_datataking"\nversion = "1.0"\nincludes = ["daq_state_machine.toml"]\n\n[simulation]\nstf_count = 5\nphysics_period_count = 1\nphysics_period_duration = 60\nstf_interval = 2.2\nrealtime = true\n`,
    });
    const fp = load().config;
    expect(fp.testbed.namespace).toBe('torre1');
    expect(fp.workflow).toMatchObject({ name: 'stf_datataking', config: 'fast_processing_default', realtime: true });
    expect(Object.keys(fp.agents ?? {})).toEqual(['fast_processing', 'data', 'processing']);
    const sd = load({ name: 'stf_datataking' }).config;
    expect(daqParameters(sd)).toMatchObject({ stf_count: 5, physics_period_count: 1, stf_interval: 2.2 });
  });
});

describe('daqParameters', () => {
  it('flattens every section but workflow, testbed and agents over daq_state_machine, in order', () => {
    const config = parseConfig({
      testbed: { namespace: 'n' },
      workflow: { name: 'w' },
      daq_state_machine: { stf_interval: 2, physics_period_count: 2 },
      simulation: { stf_interval: 1.5, stf_count: 4 },
      fast_processing: { stf_interval: 3 },
      parameters: { physics_period_count: 5, custom: 'x' },
    });
    expect(daqParameters(config)).toMatchObject({
      stf_interval: 3,
      stf_count: 4,
      physics_period_count: 5,
      custom: 'x',
    });
  });

  it('gives stf_count 0 (duration mode) when no section sets it', () => {
    const config = parseConfig({ testbed: { namespace: 'n' }, workflow: { name: 'w' } });
    expect(daqParameters(config)).toMatchObject({ stf_count: 0, physics_period_count: 2, physics_period_duration: 10 });
  });

  it('checks DAQ keys that arrive through a free-form section', () => {
    const config = parseConfig({
      testbed: { namespace: 'n' },
      workflow: { name: 'w' },
      parameters: { stf_count: 'many' },
    });
    expectInvalid(() => daqParameters(config), /\[parameters\] stf_count/, { section: 'parameters', key: 'stf_count' });
  });
});

describe('parseConfig', () => {
  it('reads back recorded parameter_values to the same configuration', () => {
    const { config, parameterValues } = loadConfig({ cwd: givenFolder() });
    expect(parseConfig(parameterValues)).toEqual(config);
  });

  it('names parameter_values, the section and the key when a recorded value is bad', () => {
    expectInvalid(
      () => parseConfig({ testbed: { namespace: 'n' }, workflow: { name: 'w' }, fast_processing: { seed: 'x' } }),
      /parameter_values: \[fast_processing\] seed/,
      { file: 'parameter_values', section: 'fast_processing', key: 'seed' },
    );
  });
});
