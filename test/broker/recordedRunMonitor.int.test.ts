/**
 * The monitor on a real run recorded through the broker: the corpus's frames published through ActiveMQ and
 * recorded by a record-only gateway, then `startMonitor` on that store. Its REST run list and run page data show
 * runs 100010 and 100011 with their STF files, samples and slices; an SSE client sees the frames of a further run
 * as the gateway records them; the MCP tools (the SDK's own client) list the runs and a run's slices.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../src/broker/gateway.js';
import type { StompConnection } from '../../src/broker/stomp.js';
import { openEventStore } from '../../src/eventStore/open.js';
import { type ActiveMq, activeMqSkipReason, startActiveMq } from '../helpers/activemq.js';
import { get, sse, type SseClient, startTestMonitor, type TestMonitor } from '../monitor/helpers.js';
import { type CorpusFrame, publishedFrames, publisherHeaders } from './corpus.js';
import { recordCorpusThroughBroker, recordingGateway, stompClient, waitFor } from './helpers.js';

const skipReason = activeMqSkipReason();
if (skipReason) console.warn(`[swf-es] skipped the monitor-on-a-recorded-run tests: ${skipReason}`);

/** What the corpus's two runs hold (recordedRun.int.test.ts and gateway.int.test.ts show the same in `swf runs`). */
const RUNS = {
  100010: { execution_id: 'stf_datataking-capture-0001', stf_files: 2, samples: 14, slices: 140, failed: 0 },
  100011: { execution_id: 'stf_datataking-capture-0002', stf_files: 2, samples: 14, slices: 150, failed: 150 },
} as const;

/**
 * Run 100011's DAQ, data and FastMon frames (`/topic/epictopic`) as a new run 100012 of a new execution: what the
 * real agents would send for the next run.
 */
function nextRunFrames(): CorpusFrame[] {
  const rename = (s: string): string => s.replaceAll('100011', '100012').replaceAll('capture-0002', 'capture-0003');
  return publishedFrames()
    .filter((f) => f.capture_run === 'run2' && f.destination === '/topic/epictopic')
    .map((f) => ({
      ...f,
      body: JSON.parse(rename(JSON.stringify(f.body))) as unknown,
      headers: JSON.parse(rename(JSON.stringify(f.headers))) as Record<string, string>,
    }));
}

describe.skipIf(skipReason !== undefined)('the monitor on a real run recorded through the broker', () => {
  let broker: ActiveMq;
  let dir: string;
  let storeUrl: string;
  let publisher: StompConnection;
  let m: TestMonitor;
  let mcp: Client;

  beforeAll(async () => {
    broker = await startActiveMq();
    dir = mkdtempSync(join(tmpdir(), 'swf-recorded-monitor-'));
    storeUrl = `sqlite:${join(dir, 'recorded.db')}`;
    publisher = await stompClient(broker.url);
    // Recorded as `swf gateway --record-only` would, in a store of its own; the monitor starts on it afterwards.
    const store = await openEventStore(storeUrl, { durable: true });
    await recordCorpusThroughBroker(broker.url, store, publisher, 'gw-monitor');
    await store.close();
    m = await startTestMonitor({ storeUrl });
    mcp = new Client({ name: 'swf-test', version: '1.0.0' });
    await mcp.connect(new StreamableHTTPClientTransport(new URL(`${m.url}/mcp`)));
  }, 240_000);

  afterAll(async () => {
    await mcp?.close();
    await m?.close();
    await publisher?.stop();
    await broker?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  const json = async (path: string): Promise<unknown> => {
    const r = await get(m.url, path);
    expect(r.status, `${path}: ${r.text.slice(0, 300)}`).toBe(200);
    return r.json;
  };
  /** Polls a REST path until `check` accepts its answer (the views follow the log a moment behind). */
  const jsonWhen = <T>(path: string, check: (body: T) => boolean, timeoutMs = 60_000): Promise<T> => {
    let last: unknown;
    return waitFor(
      () => `${path} to show what the test expects; last answer: ${JSON.stringify(last)?.slice(0, 500)}`,
      async () => {
        last = await json(path);
        return check(last as T) ? (last as T) : undefined;
      },
      timeoutMs,
    );
  };
  type Page = { count: number; results: Record<string, unknown>[] };

  const tool = async (name: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> => {
    const r = (await mcp.callTool({ name, arguments: args })) as CallToolResult;
    const text = (r.content[0] as { text: string }).text;
    if (r.isError) throw new Error(`${name}: ${text}`);
    return JSON.parse(text) as Record<string, unknown>;
  };

  it('REST: the run list and each run page show runs 100010 and 100011 with their STF files, samples and slices', async () => {
    const runs = await jsonWhen<Page>('/api/runs/?limit=100', (p) => p.count >= 2);
    expect(runs.results.map((r) => r.run_number).sort()).toEqual([100010, 100011]);
    for (const [run, expected] of Object.entries(RUNS)) {
      expect(runs.results.find((r) => r.run_number === Number(run))).toMatchObject({
        execution_id: expected.execution_id,
        namespace: 'torre1',
        phase: 'completed',
      });
      // The run page: its RunState, the slice counts by status, the timeline.
      const state = await jsonWhen<Record<string, unknown>>(
        `/api/run-states/${run}/`,
        (s) => s.slices_created === expected.slices,
      );
      expect(state).toMatchObject({
        execution_id: expected.execution_id,
        phase: 'completed',
        stf_files: expected.stf_files,
        stf_samples_received: expected.samples,
        slices_created: expected.slices,
        slices_failed: expected.failed,
      });
      expect(await json(`/api/tf-slices/counts/?run_number=${run}`)).toMatchObject({
        run_number: Number(run),
        total: expected.slices,
        failed: expected.failed,
        queued: expected.slices - expected.failed,
      });
      expect(await json(`/api/runs/${run}/timeline/`)).toMatchObject({ run_number: Number(run) });

      // The run's STF files, TF samples and slices, by name.
      const stfs = (await json(`/api/stf-files/?run_number=${run}&limit=100`)) as Page;
      expect(stfs.count).toBe(expected.stf_files);
      for (const f of stfs.results) expect(f.stf_filename).toMatch(new RegExp(`^swf\\.${run}\\.\\d{6}\\.stf$`));
      const samples = (await json(`/api/fastmon-files/?run_number=${run}&limit=100`)) as Page;
      expect(samples.count).toBe(expected.samples);
      for (const f of samples.results)
        expect(f.tf_filename).toMatch(new RegExp(`^swf\\.${run}\\.\\d{6}_tf_\\d{3}\\.tf$`));
      const slices = (await json(`/api/tf-slices/?run_number=${run}&limit=1000`)) as Page;
      expect(slices.count).toBe(expected.slices);
      expect(new Set(slices.results.map((s) => s.tf_filename)).size).toBe(expected.slices);
      for (const s of slices.results) {
        expect(s).toMatchObject({ run_number: Number(run), execution_id: expected.execution_id });
        expect(samples.results.map((f) => f.tf_filename)).toContain(s.fastmon_file);
      }
    }
  }, 120_000);

  it('SSE: a client connected to the live feed receives the frames of a further run as the gateway records them', async () => {
    const frames = nextRunFrames();
    expect(frames.map((f) => (f.body as { msg_type: string }).msg_type)).toContain('end_run');
    let feed: SseClient | undefined;
    let gateway: RunningGateway | undefined;
    // A gateway in a process of its own would have its own connection to the store: so does this one.
    const store = await openEventStore(storeUrl, { durable: true });
    try {
      feed = await sse(m.url, '/api/messages/stream/?run_ids=100012');
      expect(feed.status).toBe(200);
      await feed.waitFor((es) => es.some((e) => e.event === 'connected'));
      expect(feed.messages()).toEqual([]);
      gateway = await recordingGateway(broker.url, store, 'gw-monitor');
      for (const f of frames) await publisher.publish(f.destination, JSON.stringify(f.body), publisherHeaders(f));
      const live = feed;
      await live.waitFor(() => live.messages().length >= frames.length, 60_000);
      // Every frame once, in the order published, as the message it carries.
      expect(live.messages().map((e) => e.event)).toEqual(frames.map((f) => (f.body as { msg_type: string }).msg_type));
      for (const [i, e] of live.messages().entries()) {
        expect(JSON.parse(e.data)).toMatchObject({
          ...(frames[i]!.body as object),
          namespace: 'torre1',
          position: Number(e.id),
        });
      }
    } finally {
      feed?.close();
      await gateway?.stop();
      await store.close();
    }
    // And the run list has the new run, with its STF files and samples.
    const runs = await jsonWhen<Page>('/api/runs/?limit=100', (p) => p.count >= 3);
    expect(runs.results.find((r) => r.run_number === 100012)).toMatchObject({
      execution_id: 'stf_datataking-capture-0003',
    });
    await jsonWhen<Record<string, unknown>>(
      '/api/run-states/100012/',
      (s) => s.stf_files === 2 && s.stf_samples_received === 14 && s.phase === 'completed',
    );
  }, 120_000);

  it('MCP: the tools list the runs and a run’s slices', async () => {
    const runs = await tool('list_runs', {});
    const listed = runs.items as { run_number: number; execution_id: string }[];
    for (const [run, expected] of Object.entries(RUNS)) {
      expect(listed).toContainEqual(
        expect.objectContaining({ run_number: Number(run), execution_id: expected.execution_id }),
      );
      expect(await tool('get_run_state', { run_number: Number(run) })).toMatchObject({
        phase: 'completed',
        slices_created: expected.slices,
        slices_failed: expected.failed,
      });
      expect(await tool('list_stf_files', { run_number: Number(run) })).toMatchObject({
        total_count: expected.stf_files,
      });
    }
    const slices = await tool('list_tf_slices', { run_number: 100010, limit: 200 });
    expect(slices.total_count).toBe(RUNS[100010].slices);
    expect(slices.items).toHaveLength(RUNS[100010].slices);
    for (const s of slices.items as Record<string, unknown>[]) {
      expect(s).toMatchObject({ run_number: 100010, status: 'queued' });
    }
    const failed = await tool('list_tf_slices', { run_number: 100011, status: 'failed', limit: 1 });
    expect(failed).toMatchObject({ total_count: RUNS[100011].failed, has_more: true });
  }, 60_000);
});
