/**
 * `swf conformance` on the captured real runs: the corpus recorded as the gateway records it (the recorder, no
 * broker needed here; gateway.int.test.ts records it through ActiveMQ), then checked against the workflow's rules.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConformanceReport } from '../../src/broker/conformance.js';
import { Recorder } from '../../src/broker/recorder.js';
import { openEventStore } from '../../src/eventStore/open.js';
import { swfIn } from '../helpers/cli.js';
import { publishedFrames } from './corpus.js';

describe('swf conformance on the recorded real runs', () => {
  let dir: string;
  let url: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'swf-conformance-'));
    url = `sqlite:${join(dir, 'corpus.db')}`;
    const store = await openEventStore(url);
    const recorder = new Recorder({ namespace: 'torre1', maxBodyBytes: 524_288, leaseFactor: 3, gatewayId: 'gw' });
    for (const f of publishedFrames()) {
      const body = JSON.stringify(f.body);
      const decision = recorder.decide({
        destination: f.destination,
        headers: f.headers,
        body,
        bytes: Buffer.byteLength(body),
        receivedAt: new Date(f.captured_at * 1000),
      });
      if (decision.kind === 'record') await store.commit(decision.appends);
    }
    await store.close();
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const check = async (run: string) => {
    const r = await swfIn(dir, 'conformance', run, '--json', '--store', url);
    return { code: r.code, err: r.err, report: JSON.parse(r.out) as ConformanceReport };
  };

  it('lists the rule breaks of run 100010 message by message, and exits 1', async () => {
    const { code, err, report } = await check('100010');
    expect(err).toBe('');
    expect(code).toBe(1);
    expect(report.counts).toEqual({
      'slice-after-end-run': 71,
      'slice-null-execution': 71,
      // the transformer's answer to its own heartbeat: no run, no stamp
      'result-unmatched': 1,
      'stf-ready-unchecked': 2,
      'body-profile': 12,
    });
    const late = report.findings.filter((f) => f.rule === 'slice-after-end-run');
    // message by message: each names its slice, position and event
    expect(late[0]).toMatchObject({
      msg_type: 'slice',
      detail: expect.stringMatching(/^swf\.100010\.000002_tf_001_slice_000\.tf sent after end_run/),
    });
    expect(new Set(late.map((f) => f.event_id)).size).toBe(71);
  });

  it('lists the rule breaks of run 100011: no failed slice retried, a slice sent twice, a result after the final one', async () => {
    const { code, report } = await check('100011');
    expect(code).toBe(1);
    expect(report.counts).toEqual({
      // the agent's 76, and the capture harness's injected copy of the first slice
      'slice-after-end-run': 77,
      'slice-null-execution': 76,
      'failed-not-retried': 150,
      'slice-repeated': 1,
      'result-after-final': 1,
      'stf-ready-unchecked': 2,
      'body-profile': 12,
    });
  });

  it('prints one line per rule break and exits 3 for a run it does not have', async () => {
    const text = await swfIn(dir, 'conformance', '100011', '--store', url);
    expect(text.out).toMatch(/^run 100011: \d+ messages, 319 rule breaks\n/);
    expect(text.out.split('\n').filter((l) => l.startsWith('position '))).toHaveLength(319);
    const missing = await swfIn(dir, 'conformance', '100099', '--store', url);
    expect(missing.code).toBe(3);
    expect(missing.err).toBe('swf conformance: no messages of run 100099 in this store\n');
  });
});
