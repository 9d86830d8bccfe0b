/** `swf machines export --out` an unwritable folder is an error naming it, not a hang (issue #12, point 13). */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { swfIn } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'swf-machines-out-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('swf machines export --out', () => {
  it.each(['/proc/forbidden', '/proc/forbidden/deeper'])('%s: exit 2 naming the folder', async (out) => {
    const r = await swfIn(dir, 'machines', 'export', '--out', out);
    expect(r.code, r.err).toBe(2);
    expect(r.err).toContain(`--out ${out}: cannot write there`);
  });

  it('a file where the folder should be: exit 2', async () => {
    writeFileSync(join(dir, 'taken'), '');
    const r = await swfIn(dir, 'machines', 'export', '--out', 'taken/machines');
    expect(r.code, r.err).toBe(2);
    expect(r.err).toContain(join(dir, 'taken', 'machines'));
  });

  it('a new nested folder is created and written', async () => {
    const r = await swfIn(dir, 'machines', 'export', '--out', 'a/b/c');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(join(dir, 'a', 'b', 'c'));
  });
});
