/** The command line parsed by commander: did you mean, --version, --store before the command, help, completion. */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { commands, takeLogFormat } from '../../src/cli/main.js';
import { similar } from '../../src/suggest.js';
import { swfIn } from '../helpers/cli.js';

const exec = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'swf-parser-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('did you mean', () => {
  it('suggests the command for a mistyped one, exit 2', async () => {
    const r = await swfIn(dir, 'rnus');
    expect(r.code).toBe(2);
    expect(r.err).toBe("swf: unknown command 'rnus' (did you mean runs?) (swf --help lists the commands)\n");
    const far = await swfIn(dir, 'frobnicate');
    expect(far.code).toBe(2);
    expect(far.err).toMatch(/^swf: unknown command 'frobnicate' \(swf --help/);
  });

  it("suggests the option for a mistyped one, with the command's usage", async () => {
    const r = await swfIn(dir, 'events', 'read', '--stor', 'memory:');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^swf events: unknown option '--stor' \(did you mean --store\?\)\nusage: swf events read/);
    const replay = await swfIn(dir, 'replay', '1', '--chek');
    expect(replay.err).toMatch(/unknown option '--chek' \(did you mean --check\?\)/);
  });

  it('suggests the --set key and section', async () => {
    const store = `sqlite:${join(dir, 'set.db')}`;
    const key = await swfIn(dir, 'run', '--set', 'fast_processing.stf_cnt=3', '--store', store);
    expect(key.code).toBe(2);
    expect(key.err).toMatch(/unknown key 'stf_cnt' in \[fast_processing\] \(did you mean 'stf_count'\?\)/);
    const section = await swfIn(dir, 'run', '--set', 'fast_procesing.stf_count=3', '--store', store);
    expect(section.code).toBe(2);
    expect(section.err).toMatch(/unknown section \[fast_procesing\] \(did you mean 'fast_processing'\?\)/);
    // In a file too.
    writeFileSync(join(dir, 'testbed.toml'), '[testbed]\nnamespace = "t"\n[fast_processing]\nslices_per_sampel = 2\n');
    const file = await swfIn(dir, 'run', '--testbed', join(dir, 'testbed.toml'), '--store', store);
    expect(file.code).toBe(2);
    expect(file.err).toMatch(/unknown key 'slices_per_sampel' \(did you mean 'slices_per_sample'\?\)/);
  });

  it('suggests nothing when nothing is near', () => {
    expect(similar('stf_cnt', ['stf_count', 'stf_interval'])).toEqual(['stf_count']);
    expect(similar('zzz', ['run', 'runs'])).toEqual([]);
    expect(similar('run', ['run', 'runs'])).toEqual(['runs']);
  });
});

describe('the top level', () => {
  it('-v and --version print the version in package.json', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    for (const flag of ['-v', '--version']) {
      const r = await swfIn(dir, flag);
      expect(r.code).toBe(0);
      expect(r.out).toBe(`swf-es ${pkg.version}\n`);
    }
  });

  it('takes --store before the command as after it', async () => {
    const store = `sqlite:${join(dir, 'before.db')}`;
    expect((await swfIn(dir, 'runs', '--json', '--store', store)).code).toBe(5); // no store there yet
    await swfIn(dir, 'run', '--set', 'fast_processing.stf_count=1', '--store', store);
    const before = await swfIn(dir, '--store', store, 'runs', '--json');
    expect(before.code, before.err).toBe(0);
    expect((JSON.parse(before.out) as { executions: unknown[] }).executions).toHaveLength(1);
    // Given twice, before and after: one value only.
    const twice = await swfIn(dir, '--store', store, 'runs', '--store', store);
    expect(twice.code).toBe(2);
    expect(twice.err).toMatch(/--store was given more than once/);
    // Every command takes it, machines (which reads no store) too.
    expect((await swfIn(dir, '--store', store, 'machines', 'export', '--format', 'json')).code).toBe(0);
  }, 60_000);

  it('lists the commands with --help and with no command (exit 2), each with its summary', async () => {
    const help = await swfIn(dir, '--help');
    expect(help.code).toBe(0);
    for (const c of commands) expect(help.out).toContain(`  ${c.name} `);
    expect(help.out).toMatch(/Every command takes --store URL/);
    const none = await swfIn(dir);
    expect(none.code).toBe(2);
    expect(none.out).toBe(help.out);
  });

  it("shows a command's docs with CMD --help, -h and help CMD", async () => {
    for (const c of commands) {
      const a = await swfIn(dir, c.name, '--help');
      expect(a.code, c.name).toBe(0);
      expect(a.out, c.name).toContain(c.usage.split('\n')[0]!);
      expect((await swfIn(dir, c.name, '-h')).out).toBe(a.out);
      expect((await swfIn(dir, 'help', c.name)).out).toBe(a.out);
    }
    const unknown = await swfIn(dir, 'help', 'rnu');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/unknown command 'rnu' \(did you mean 'run'\?\)/);
  });
});

describe('--log-format', () => {
  it('is taken anywhere before --, once, json or pretty', () => {
    expect(takeLogFormat(['run', '--log-format', 'json', '--json'])).toEqual({
      argv: ['run', '--json'],
      logFormat: 'json',
    });
    expect(takeLogFormat(['--log-format=pretty', 'runs'])).toEqual({ argv: ['runs'], logFormat: 'pretty' });
    expect(takeLogFormat(['runs', '--', '--log-format', 'x'])).toEqual({ argv: ['runs', '--', '--log-format', 'x'] });
    expect(() => takeLogFormat(['runs', '--log-format', 'xml'])).toThrow(/--log-format must be json or pretty/);
    expect(() => takeLogFormat(['runs', '--log-format'])).toThrow(/needs a value/);
    expect(() => takeLogFormat(['--log-format', 'json', 'runs', '--log-format', 'json'])).toThrow(/more than once/);
  });
});

describe('swf completion', () => {
  it('prints a bash script that completes commands, subcommands and each command’s options', async () => {
    const r = await swfIn(dir, 'completion', 'bash');
    expect(r.code, r.err).toBe(0);
    const script = join(dir, 'swf.bash');
    writeFileSync(script, r.out);
    await exec('bash', ['-n', script]); // syntax
    const complete = async (...words: string[]): Promise<string[]> => {
      const line = `source ${script}; COMP_WORDS=(swf ${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length}; _swf; printf '%s\\n' "\${COMPREPLY[@]}"`;
      const { stdout } = await exec('bash', ['-c', line]);
      return stdout.split('\n').filter(Boolean);
    };
    expect(await complete('ru')).toEqual(['run', 'runs']);
    expect(await complete('events', 're')).toEqual(['read']);
    expect(await complete('events', 'read', '--f')).toEqual(['--follow', '--from']);
    expect(await complete('replay', '1', '--ins')).toEqual(['--inspect']);
    expect(await complete('run', '--log-format', 'p')).toEqual(['pretty']);
    const zsh = await swfIn(dir, 'completion', 'zsh');
    expect(zsh.out).toMatch(/bashcompinit/);
    expect((await swfIn(dir, 'completion', 'fish')).code).toBe(2);
  });
});
