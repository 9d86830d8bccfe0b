/** Logs: readable lines on a terminal, JSON lines otherwise or with --log-format json. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { logFormatFor, prettyLine } from '../../src/cli/logFormat.js';

const exec = promisify(execFile);

describe('log format', () => {
  it('is pretty on a terminal and JSON otherwise, unless the option or SWF_LOG_FORMAT says', () => {
    expect(logFormatFor(undefined, {}, true)).toBe('pretty');
    expect(logFormatFor(undefined, {}, false)).toBe('json');
    expect(logFormatFor('json', {}, true)).toBe('json');
    expect(logFormatFor('pretty', {}, false)).toBe('pretty');
    expect(logFormatFor(undefined, { SWF_LOG_FORMAT: 'pretty' }, false)).toBe('pretty');
    expect(() => logFormatFor(undefined, { SWF_LOG_FORMAT: 'xml' }, false)).toThrow(/SWF_LOG_FORMAT must be json/);
  });

  it('writes a pino line as time, level, logger, message and fields', () => {
    const t = new Date(2026, 0, 2, 3, 4, 5, 6).getTime();
    const json = JSON.stringify({
      level: 40,
      time: t,
      pid: 1,
      hostname: 'h',
      name: 'fastproc',
      slice: 'swf.100010.000001.stf-3',
      attempt: 2,
      detail: { a: 1 },
      msg: 'lease expired',
    });
    expect(prettyLine(json)).toBe(
      '03:04:05.006 WARN  fastproc: lease expired slice=swf.100010.000001.stf-3 attempt=2 detail={"a":1}\n',
    );
    expect(prettyLine(json, { colour: true })).toContain('\x1b[33mWARN \x1b[0m');
    const err = JSON.stringify({
      level: 50,
      time: t,
      msg: 'append failed',
      err: { type: 'Error', message: 'disk', stack: 'Error: disk\n at x' },
    });
    expect(prettyLine(err)).toBe('03:04:05.006 ERROR append failed Error: disk\n');
    expect(prettyLine(err, { stack: true })).toContain('    Error: disk\n     at x');
    expect(prettyLine('not json')).toBe('not json\n');
  });

  it('swf writes JSON lines to a pipe, readable lines with --log-format pretty', async () => {
    const run = async (...extra: string[]): Promise<string[]> => {
      const { stderr } = await exec(
        process.execPath,
        [
          'dist/src/cli/main.js',
          'run',
          '--set',
          'fast_processing.stf_count=1',
          '--store',
          'memory:',
          '--json',
          ...extra,
        ],
        { env: { ...process.env, SWF_LOG_LEVEL: 'info', SWF_LOG_FORMAT: '' } },
      );
      return stderr.split('\n').filter((l) => /workers started/.test(l));
    };
    const [json] = await run();
    expect(JSON.parse(json!)).toMatchObject({ level: 30, name: 'swf', msg: 'workers started' });
    const [pretty] = await run('--log-format', 'pretty');
    expect(pretty).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}swf: workers started run=\d+ workers=\d+$/);
    const [forced] = await run('--log-format', 'json');
    expect(JSON.parse(forced!)).toMatchObject({ msg: 'workers started' });
  }, 60_000);
});
