/**
 * Loading a configuration the way the testbed does (testbed-facts §6), validated:
 *
 * 1. the workflow file (`--config NAME|PATH`, else the testbed file's `[workflow] config`, else
 *    `fast_processing_default`), found in `./workflows/` first, then in the package's `workflows/`
 *    (`NAME`, `NAME.toml`, `NAME_default.toml`);
 * 2. its `[workflow] includes`: an included file's section is added only if no earlier file has that section
 *    (the first include wins; an include never overrides the main file);
 * 3. the testbed file (`--testbed`, `SWF_TESTBED_CONFIG`, or `testbed.toml`; bare names are looked up like
 *    workflow files): each of its sections updates the merged one key by key (and adds new sections);
 * 4. the testbed file's `[parameters]`: each replaces that key in every section (but `[workflow]`) that has it;
 * 5. `--set section.key=value` (TOML value syntax; a bare word is a string): sets any key the schema knows, even
 *    where no file set it. An unknown section or key is an error.
 *
 * The result is validated; an error names the file, the section and the key. The merged, validated result
 * (defaults included) is the run's `parameter_values`.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseToml, TomlDate, TomlError } from 'smol-toml';
import type { z } from 'zod';
import { NotFoundError, ValidationError } from '../errors.js';
import { didYouMean } from '../suggest.js';
import { CONFIG_SECTIONS, configSchema, daqSchema, knownKeys, type Config, type DaqConfig } from './schema.js';

export const DEFAULT_WORKFLOW = 'fast_processing_default';
export const DEFAULT_TESTBED = 'testbed.toml';
export const PACKAGE_NAME = 'swf-es';

export interface LoadConfigOptions {
  /** Workflow configuration name (`fast_processing_default`) or path (`./my.toml`). */
  name?: string;
  /** Workflow configuration file path (wins over `name`). */
  path?: string;
  /** Testbed file: a path, or a bare name looked up in the workflows folders. */
  testbed?: string;
  /** `section.key=value` overrides, TOML value syntax. */
  set?: readonly string[];
  /** Environment (only `SWF_TESTBED_CONFIG` is read). Pass `process.env` from the composition root. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Where `./workflows/` is looked up and relative paths resolve. Default `process.cwd()`. */
  cwd?: string;
  /** The installed package's folder (its `workflows/` is the fallback). Default: found from this module. */
  packageDir?: string;
}

export interface ConfigSources {
  workflow: string;
  includes: string[];
  testbed: string;
  sets: string[];
}

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export interface LoadedConfig {
  config: Config;
  sources: ConfigSources;
  /** The merged, validated configuration as JSON (what WorkflowExecutionStarted records). */
  parameterValues: JsonObject;
}

type Table = Record<string, unknown>;
const isTable = (v: unknown): v is Table =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

let cachedPackageDir: string | undefined;

/** The folder of the installed swf-es package: upward from this module to the package.json named swf-es. */
export function findPackageDir(from: string = dirname(fileURLToPath(import.meta.url))): string {
  if (cachedPackageDir && from === dirname(fileURLToPath(import.meta.url))) return cachedPackageDir;
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === PACKAGE_NAME) {
          cachedPackageDir = dir;
          return dir;
        }
      } catch {
        // not ours; keep looking upward
      }
    }
    if (dirname(dir) === dir) throw new NotFoundError(`cannot find the ${PACKAGE_NAME} package folder above ${from}`);
  }
}

const isFile = (p: string): boolean => existsSync(p) && statSync(p).isFile();
const looksLikePath = (name: string): boolean => name.includes('/') || name.includes('\\') || isAbsolute(name);

/** Finds a named configuration file; `suffixes` are tried after the name itself. */
function locate(name: string, dirs: readonly string[], cwd: string, suffixes: readonly string[], what: string): string {
  if (looksLikePath(name)) {
    const p = resolve(cwd, name);
    if (isFile(p)) return p;
    throw new NotFoundError(`${what} file not found: ${p}`);
  }
  const tried: string[] = [];
  for (const dir of dirs) {
    for (const candidate of [name, ...suffixes.map((s) => `${name}${s}`)]) {
      const p = join(dir, candidate);
      tried.push(p);
      if (isFile(p)) return p;
    }
  }
  const inCwd = resolve(cwd, name);
  if (isFile(inCwd)) return inCwd;
  throw new NotFoundError(`${what} '${name}' not found; looked for ${tried.join(', ')}`);
}

function readToml(file: string): Table {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e: unknown) {
    throw new NotFoundError(`cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  try {
    return parseToml(text);
  } catch (e: unknown) {
    if (e instanceof TomlError) {
      throw new ValidationError(`${file}:${e.line}:${e.column}: invalid TOML: ${e.message.split('\n')[0]}`, {
        file,
      });
    }
    throw e;
  }
}

/** Where each `section.key` (or `section`) came from, for error messages. */
class Provenance {
  private readonly origin = new Map<string, string>();
  setTable(prefix: string, table: Table, file: string): void {
    this.origin.set(prefix, file);
    for (const [k, v] of Object.entries(table)) {
      const path = `${prefix}.${k}`;
      this.origin.set(path, file);
      if (isTable(v)) this.setTable(path, v, file);
    }
  }
  set(path: string, file: string): void {
    this.origin.set(path, file);
  }
  /** The most specific known origin of `path`. */
  of(path: readonly string[]): string | undefined {
    for (let n = path.length; n > 0; n--) {
      const o = this.origin.get(path.slice(0, n).join('.'));
      if (o) return o;
    }
    return undefined;
  }
}

/** A TOML value as JSON (dates as ISO strings, big integers as numbers or strings). */
function toJson(v: unknown): JsonValue {
  if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string') return v;
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (v instanceof TomlDate) return v.toISOString();
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(toJson);
  if (isTable(v)) {
    const out: JsonObject = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = toJson(x);
    return out;
  }
  return null; // TOML has no other kinds of value
}

function issueToError(issue: z.core.$ZodIssue, provenance: Provenance, fallbackFile: string): ValidationError {
  let path = issue.path.map(String);
  let problem = issue.message;
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '';
    path = [...path, key];
    const known = path.length === 1 ? CONFIG_SECTIONS : knownKeys(path[0]!);
    const hint = Array.isArray(known) ? didYouMean(key, known) : '';
    problem =
      path.length === 1
        ? `unknown section [${key}]${hint}`
        : `unknown key '${key}'${hint}${issue.keys.length > 1 ? ` (also: ${issue.keys.slice(1).join(', ')})` : ''}`;
  } else if (issue.code === 'invalid_type' && issue.message.includes('received undefined')) {
    problem = `is missing (expected ${issue.expected})`;
  } else {
    problem = problem.replace(/^Invalid input: /, '');
  }
  const file = provenance.of(path) ?? fallbackFile;
  const section = path[0];
  const key = path.length > 1 ? path.slice(1).join('.') : undefined;
  const where = section === undefined ? '' : key === undefined ? `[${section}]` : `[${section}] ${key}`;
  return new ValidationError(`${file}: ${where}${where ? ': ' : ''}${problem}`, {
    file,
    ...(section !== undefined ? { section } : {}),
    ...(key !== undefined ? { key, field: `${section}.${key}` } : {}),
  });
}

/** Validates a merged configuration, keeping its section order. */
function validate(merged: Table, provenance: Provenance, fallbackFile: string): Config {
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    const [first] = result.error.issues;
    throw first ? issueToError(first, provenance, fallbackFile) : new ValidationError(`${fallbackFile}: invalid`);
  }
  // Keep the merged section order (it decides the DAQ's flattened view), defaults appended.
  const ordered: Table = {};
  for (const k of Object.keys(merged)) if (k in result.data) ordered[k] = (result.data as Table)[k];
  for (const [k, v] of Object.entries(result.data)) if (!(k in ordered) && v !== undefined) ordered[k] = v;
  return ordered as Config;
}

function parseSet(spec: string): { path: string[]; value: unknown } {
  const eq = spec.indexOf('=');
  if (eq <= 0) {
    throw new ValidationError(`--set ${spec}: expected section.key=value`, { file: '--set' });
  }
  const path = spec.slice(0, eq).trim().split('.');
  const raw = spec.slice(eq + 1).trim();
  if (path.length < 2 || path.some((p) => p === '')) {
    throw new ValidationError(`--set ${spec}: expected section.key=value`, { file: '--set' });
  }
  let value: unknown = raw;
  try {
    value = (parseToml(`v = ${raw}`) as { v: unknown }).v;
  } catch {
    // Not a TOML value: a bare word (shells eat the quotes of "text"); the schema still checks its type.
  }
  return { path, value };
}

function checkSetPath(spec: string, path: readonly string[]): void {
  const [section, ...rest] = path as [string, ...string[]];
  const keys = knownKeys(section);
  const fail = (what: string): never => {
    throw new ValidationError(`--set ${spec}: ${what}`, { file: '--set', section, key: rest.join('.') });
  };
  if (keys === undefined) fail(`unknown section [${section}]${didYouMean(section, CONFIG_SECTIONS)}`);
  if (keys === 'any') return;
  if (section === 'agents') {
    if (rest.length !== 2) fail('expected agents.<name>.<key>=value');
    if (!(keys as readonly string[]).includes(rest[1]!))
      fail(`unknown key '${rest[1]}' in [agents.${rest[0]}]${didYouMean(rest[1]!, keys as readonly string[])}`);
    return;
  }
  if (rest.length !== 1) fail(`[${section}] has no nested keys`);
  if (!(keys as readonly string[]).includes(rest[0]!))
    fail(`unknown key '${rest[0]}' in [${section}]${didYouMean(rest[0]!, keys as readonly string[])}`);
}

/** One `--set section.key=value`: its path and TOML value, the path checked against the schema's keys. */
export function parseOverride(spec: string): { path: string[]; value: unknown } {
  const parsed = parseSet(spec);
  checkSetPath(spec, parsed.path);
  return parsed;
}

/** Loads, merges and validates a configuration (see the module comment for the order). */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const cwd = options.cwd ?? process.cwd();
  const pkgDir = options.packageDir ?? findPackageDir();
  const dirs = [...new Set([resolve(cwd, 'workflows'), join(pkgDir, 'workflows')])];
  const provenance = new Provenance();

  const testbedFile = locate(
    options.testbed ?? (options.env?.SWF_TESTBED_CONFIG || undefined) ?? DEFAULT_TESTBED,
    dirs,
    cwd,
    ['.toml'],
    'testbed configuration',
  );
  const testbed = readToml(testbedFile);
  const testbedWorkflow = isTable(testbed.workflow) ? testbed.workflow : {};
  const workflowName =
    options.path ??
    options.name ??
    (typeof testbedWorkflow.config === 'string' ? testbedWorkflow.config : undefined) ??
    DEFAULT_WORKFLOW;
  const workflowFile = options.path
    ? locate(resolve(cwd, options.path), [], cwd, [], 'workflow configuration')
    : locate(workflowName, dirs, cwd, ['.toml', '_default.toml'], 'workflow configuration');

  // 1-2. the workflow file, then its includes (sections only where absent; first wins).
  const merged: Table = {};
  const includes: string[] = [];
  const visited = new Set<string>();
  const addFile = (file: string): void => {
    visited.add(file);
    const table = readToml(file);
    for (const [section, values] of Object.entries(table)) {
      if (section in merged) continue;
      merged[section] = isTable(values) ? structuredClone(values) : values;
      if (isTable(values)) provenance.setTable(section, values, file);
      else provenance.set(section, file);
    }
    const wf = table.workflow;
    const list = isTable(wf) ? wf.includes : undefined;
    if (list === undefined) return;
    if (!Array.isArray(list) || list.some((x) => typeof x !== 'string')) {
      throw new ValidationError(`${file}: [workflow] includes: must be a list of file names`, {
        file,
        section: 'workflow',
        key: 'includes',
      });
    }
    for (const name of list as string[]) {
      const included = locate(name, [dirname(file), ...dirs], cwd, ['.toml'], `include '${name}' of ${file}:`);
      if (visited.has(included)) continue;
      includes.push(included);
      addFile(included);
    }
  };
  addFile(workflowFile);

  // 3. the testbed file: section by section, key by key.
  for (const [section, values] of Object.entries(testbed)) {
    if (isTable(values) && isTable(merged[section])) {
      merged[section] = { ...merged[section], ...structuredClone(values) };
    } else {
      merged[section] = isTable(values) ? structuredClone(values) : values;
    }
    if (isTable(values)) provenance.setTable(section, values, testbedFile);
    else provenance.set(section, testbedFile);
  }

  // 4. the testbed's [parameters]: replace a key in every section (but [workflow]) that already has it.
  if (isTable(testbed.parameters)) {
    for (const [key, value] of Object.entries(testbed.parameters)) {
      for (const [section, values] of Object.entries(merged)) {
        if (section === 'workflow' || section === 'parameters' || !isTable(values) || !(key in values)) continue;
        values[key] = value;
        provenance.set(`${section}.${key}`, `${testbedFile} [parameters]`);
      }
    }
  }

  // 5. --set
  const sets = [...(options.set ?? [])];
  for (const spec of sets) {
    const { path, value } = parseSet(spec);
    checkSetPath(spec, path);
    let table = merged;
    for (const part of path.slice(0, -1)) {
      if (!isTable(table[part])) table[part] = {};
      table = table[part] as Table;
    }
    table[path[path.length - 1]!] = value;
    provenance.set(path.join('.'), `--set ${spec}`);
  }

  const config = validate(merged, provenance, workflowFile);
  checkRunnable(config);
  return {
    config,
    sources: { workflow: workflowFile, includes, testbed: testbedFile, sets },
    parameterValues: withoutSecrets(toJson(config) as JsonObject),
  };
}

/**
 * The parameters an execution records (and the monitor, `swf export` and MCP show) without the broker's password:
 * it is a credential, not a parameter of the run.
 */
function withoutSecrets(values: JsonObject): JsonObject {
  const broker = values.broker;
  if (!isTable(broker) || !('password' in broker)) return values;
  const { password: _password, ...rest } = broker;
  return { ...values, broker: rest };
}

/**
 * Values each valid alone that together describe a run that cannot end, refused when a configuration is loaded
 * (a recorded one is history and is not checked again).
 */
function checkRunnable(config: Config): void {
  const daq = daqParameters(config);
  const sectionOf = (key: string): string =>
    Object.entries(config as Table).reduce(
      (found, [section, values]) =>
        !NOT_FLATTENED.has(section) && isTable(values) && values[key] !== undefined ? section : found,
      'daq_state_machine',
    );
  const fail = (key: string, message: string): never => {
    const section = sectionOf(key);
    throw new ValidationError(`[${section}] ${key}: ${message}`, { section, key, field: `${section}.${key}` });
  };
  if (daq.physics_period_count === 0 && daq.stf_count > 0)
    fail(
      'physics_period_count',
      `0 (periods until stopped) needs duration mode (stf_count = 0); with stf_count = ${daq.stf_count} the run would pause and resume forever once its STFs are taken`,
    );
  if (daq.stf_count === 0 && daq.physics_period_duration === 0)
    fail('physics_period_duration', 'must be > 0 in duration mode (stf_count = 0): the periods would take no STF');
}

/**
 * Validates a configuration object that was already merged, such as a run's recorded `parameter_values`.
 * Errors name `origin` (default `parameter_values`), the section and the key.
 */
export function parseConfig(values: unknown, origin = 'parameter_values'): Config {
  if (!isTable(values)) throw new ValidationError(`${origin}: a configuration must be an object`, { file: origin });
  return validate(values, new Provenance(), origin);
}

/** The DAQ simulator's parameters: `[daq_state_machine]` with every other section's keys laid over it. */
export type DaqParameters = DaqConfig & { stf_count: number; [key: string]: unknown };

const NOT_FLATTENED: ReadonlySet<string> = new Set([
  'workflow',
  'testbed',
  'agents',
  'source',
  'git_version',
  'daq_state_machine',
]);

/**
 * The DAQ's flattened view (testbed-facts §6): `[daq_state_machine]`, then every other section except
 * `workflow`, `testbed`, `agents` (and the testbed's `source`, `git_version`) merged over it in the
 * configuration's section order (later wins). So `[fast_processing] stf_count = 10` is the DAQ's `stf_count`.
 * `stf_count` 0 (or absent) means duration mode. The DAQ keys are validated again after flattening.
 */
export function daqParameters(config: Config): DaqParameters {
  const flat: Table = { ...config.daq_state_machine };
  const from: Record<string, string> = {};
  for (const [section, values] of Object.entries(config)) {
    if (NOT_FLATTENED.has(section) || !isTable(values)) continue;
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) continue;
      flat[k] = v;
      from[k] = section;
    }
  }
  const daqKeys = Object.keys(daqSchema.shape);
  const result = daqSchema.safeParse(Object.fromEntries(daqKeys.filter((k) => k in flat).map((k) => [k, flat[k]])));
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const key = String(issue.path[0] ?? '');
    const section = from[key] ?? 'daq_state_machine';
    throw new ValidationError(`[${section}] ${key}: ${issue.message} (as a DAQ parameter)`, {
      section,
      key,
      field: `${section}.${key}`,
    });
  }
  return { ...flat, ...result.data, stf_count: result.data.stf_count ?? 0 };
}
