/**
 * Store URLs a command cannot use (issue #12, points 12 and 14): `memory:` for commands that work with other
 * processes through the store, and SQLite URI forms the store does not support; both exit 2 and create nothing.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { swfIn } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'swf-urls-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const swf = (...argv: string[]) => swfIn(dir, ...argv);

describe('store URLs', () => {
  it.each([
    ['agent', 'worker'],
    ['agent', 'data'],
    ['run', '--daq-only'],
  ])('swf %s %s --store memory: is refused (exit 2), saying why', async (...argv) => {
    const r = await swf(...argv, '--store', 'memory:');
    expect(r.code, r.err).toBe(2);
    expect(r.err).toMatch(/memory: store is private to one process; use sqlite:PATH/);
  });

  it.each(['sqlite:file:x.db?mode=ro', 'sqlite:x.db?mode=ro', 'sqlite:file:x.db'])(
    '%s is refused (exit 2) and creates nothing',
    async (url) => {
      for (const argv of [['run'], ['runs']]) {
        const r = await swf(...argv, '--store', url);
        expect(r.code, `${argv.join(' ')}: ${r.err}`).toBe(2);
        expect(r.err).toMatch(/URI forms .* are not supported/);
      }
      expect(existsSync(join(dir, 'file:'))).toBe(false);
      expect(readdirSync(dir)).toEqual([]);
    },
  );
});
