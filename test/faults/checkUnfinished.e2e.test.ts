/**
 * `swf replay RUN --check` of a run cut short by a crash (issue #12, point 7): reported as unfinished (exit 6,
 * naming the inputs without outputs yet), not as a divergence (exit 1); once resumed to its end, deterministic.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { swfIn } from '../helpers/cli.js';
import { runAndKill } from '../helpers/crash.js';

const dir = mkdtempSync(join(tmpdir(), 'swf-check-unfinished-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const swf = (...argv: string[]) => swfIn(dir, ...argv);
const SET = ['fast_processing.stf_count=4', 'fast_processing.slices_per_sample=5', 'fast_processing.seed=3'];

describe('replay --check of an unfinished run', () => {
  it('says unfinished (exit 6) with the inputs not acted on; after --resume, deterministic (exit 0)', async () => {
    let url = '';
    let outcome: 'killed' | 'finished' = 'finished';
    // A kill point in the middle of the run (about 500 of its ~750 events); earlier if the run outpaces it.
    for (let attempt = 0; outcome === 'finished' && attempt < 4; attempt++) {
      url = `sqlite:${join(dir, `run-${attempt}.db`)}`;
      outcome = await runAndKill(url, SET, BigInt(500 - attempt * 100));
    }
    expect(outcome).toBe('killed');
    const check = await swf('replay', '100010', '--check', '--store', url);
    expect(check.code, check.out + check.err).toBe(6);
    expect(check.out).toMatch(/UNFINISHED/);
    expect(check.out).not.toMatch(/DIVERGES/);
    const json = await swf('replay', '100010', '--check', '--json', '--store', url);
    const result = JSON.parse(json.out) as { ok: boolean; unfinished: boolean; unprocessed: { inputs: number }[] };
    expect(result).toMatchObject({ ok: true, unfinished: true });

    const resumed = await swf('run', '--resume', '100010', '--store', url);
    expect(resumed.code, resumed.err).toBe(0);
    const after = await swf('replay', '100010', '--check', '--store', url);
    expect(after.code, after.out).toBe(0);
    expect(after.out).toMatch(/deterministic/);
  }, 120_000);
});
