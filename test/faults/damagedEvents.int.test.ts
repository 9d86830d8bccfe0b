/**
 * A flipped byte inside an event's JSON (issue #12, point 9): every command names the store and the event's
 * position (exit 5) instead of "Unexpected number in JSON"; `events read` and `export` read past it with
 * --skip-damaged and say so. A 0-byte file is refused like any file that is not a store.
 */
import { utimesSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunSummary } from '../../src/agents/workflow.js';
import { swfIn } from '../helpers/cli.js';
import { runInto } from '../helpers/runs.js';

const dir = mkdtempSync(join(tmpdir(), 'swf-damaged-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const swf = (...argv: string[]) => swfIn(dir, ...argv);
const path = join(dir, 'swf.db');
const url = `sqlite:${path}`;
let summary: RunSummary;
let total = 0;
const DAMAGED = 40;

beforeAll(async () => {
  summary = await runInto(url, ['fast_processing.stf_count=1', 'fast_processing.slices_per_sample=3']);
  const db = new Database(path);
  try {
    total = db.prepare('SELECT count(*) FROM events').pluck().get() as number;
    // A flipped byte: the data's first quote becomes a digit.
    db.prepare(`UPDATE events SET data = '{1' || substr(data, 3) WHERE position = ?`).run(DAMAGED);
  } finally {
    db.close();
  }
}, 60_000);

describe('a damaged event', () => {
  it('events read, export and runs name the store and the position (exit 5)', async () => {
    for (const argv of [['events', 'read'], ['export', String(summary.run_number)], ['runs']]) {
      const r = await swf(...argv, '--store', url);
      expect(r.code, `${argv.join(' ')}: ${r.err}`).toBe(5);
      expect(r.err).toContain(path);
      expect(r.err).toMatch(new RegExp(`damaged event at position ${DAMAGED}\\b`));
      expect(r.err).not.toMatch(/^Unexpected/m);
    }
  });

  it('events read --skip-damaged reads past it and says so', async () => {
    const r = await swf('events', 'read', '--skip-damaged', '--store', url);
    expect(r.code, r.err).toBe(0);
    expect(r.out.trimEnd().split('\n')).toHaveLength(total - 1);
    expect(r.err).toMatch(new RegExp(`skipped the damaged event at position ${DAMAGED} `));
    expect(r.err).toMatch(/1 damaged event\(s\) skipped/);
  });

  it('export --skip-damaged leaves it out and says so', async () => {
    const r = await swf('export', String(summary.run_number), '--skip-damaged', '--store', url);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(new RegExp(`left out the damaged event at position ${DAMAGED} `));
    expect(r.out.split('\n')[0]).toMatch(/swf-es-run-bundle/);
  });

  it('a 0-byte file is not a store (exit 5), for readers and writers alike', async () => {
    const empty = join(dir, 'empty.db');
    writeFileSync(empty, '');
    const old = new Date(Date.now() - 60_000);
    utimesSync(empty, old, old);
    for (const argv of [['runs'], ['events', 'read'], ['run']]) {
      const r = await swf(...argv, '--store', `sqlite:${empty}`);
      expect(r.code, `${argv.join(' ')}: ${r.err}`).toBe(5);
      expect(r.err).toMatch(/is an empty file, not a swf-es SQLite store/);
    }
  });
});
