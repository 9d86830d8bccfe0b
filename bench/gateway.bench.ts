/**
 * `npm run bench:gateway`: `swf gateway` against a local ActiveMQ 5 (Debian's package, started here from a folder
 * of its own), each figure beside a plain STOMP client doing the same work in the same run:
 * - inbound: frames recorded per second from a durable subscription's backlog into a SQLite store (durable
 *   commits), beside a plain consumer acknowledging the same backlog on the same kind of subscription (goal: at
 *   least half). Rounds alternate plain and gateway, so the machine's load falls on both alike;
 * - outbound: frames published per second from the log with receipts, beside a plain producer with receipts
 *   (goal: at least half);
 * - latency at 500 frames/s: a publisher in a thread of its own sends at a steady 500 frames/s; for each frame,
 *   the time from its send to its committed event (gateway), beside the time from its send to its arrival at a
 *   plain consumer on the same kind of subscription (the broker's own share), p50 and p99 (goal: p99 below
 *   20 ms). The gateway's own share (arrival to commit) is printed too.
 *
 * The broker: a durable subscription makes ActiveMQ store every persistent frame before it dispatches it. With
 * KahaDB's default `journalDiskSyncStrategy=always` that is an fsync per frame in the broker, which on a shared
 * disk caps the broker itself below 500 frames/s (the plain consumer falls seconds behind too). By default the
 * bench runs the broker with `periodic` (an fsync a second), so the figures measure the gateway;
 * `--broker-sync always` measures with ActiveMQ's default.
 *
 * Options: --frames N (default 20000), --rounds R (default 2), --seconds S at 500/s (default 10),
 * --broker-sync always|periodic, --quick (2000 frames, 1 round, 3 s).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import { startGateway } from '../src/broker/gateway.js';
import { StompConnection } from '../src/broker/stomp.js';
import { brokerSchema } from '../src/config/schema.js';
import { openEventStore } from '../src/eventStore/open.js';
import { activeMqMissing, startActiveMq } from './activemq.js';

const RATE = 500;
const WINDOW = 256;
const SENT_HEADER = 'bench-sent-ns';
const logger = pino({ level: 'silent' });

// Real slice bodies from the captured testbed traffic, cycled, each made distinct.
const corpus = fileURLToPath(new URL('../../test/fixtures/testbed-wire/stomp.ndjson', import.meta.url));
const slices = readFileSync(corpus, 'utf8')
  .split('\n')
  .filter((l) => l.includes('"msg_type": "slice"') && !l.includes('"broker_copy": true'))
  .map((l) => (JSON.parse(l) as { body: Record<string, unknown> }).body);
const frameBody = (i: number): string => {
  const b = slices[i % slices.length]!;
  return JSON.stringify({ ...b, created_at: `2026-12-07T15:21:44.${String(i).padStart(6, '0')}` });
};
const headers = { msg_type: 'slice', namespace: 'torre1', run_id: '100010', vo: 'eic', persistent: 'true' };
/** One clock for both threads: the process's monotonic clock, in nanoseconds. */
const now = (): bigint => process.hrtime.bigint();

async function client(url: string, clientId: string): Promise<StompConnection> {
  const c = new StompConnection({
    url,
    clientId,
    reconnectDelayMs: 100,
    maxReconnectDelayMs: 1000,
    heartbeatMs: 0,
    logger,
  });
  const up = new Promise<void>((r) => c.onConnected(r));
  c.start();
  await up;
  return c;
}

/** The paced publisher (its own thread, so its timers do not share an event loop with the consumer measured). */
interface PacedJob {
  url: string;
  topic: string;
  total: number;
}

async function pacedPublisher(job: PacedJob): Promise<void> {
  const pub = await client(job.url, `bench-paced-${process.pid}-${job.topic}`);
  const t0 = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < job.total; i++) {
    // Frame i leaves at t0 + i/RATE.
    const wait = t0 + (i * 1000) / RATE - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    pending.push(pub.publish(job.topic, frameBody(i), { ...headers, [SENT_HEADER]: String(now()) }));
  }
  await Promise.all(pending);
  await pub.stop();
}

if (!isMainThread) {
  await pacedPublisher(workerData as PacedJob);
  parentPort!.postMessage('done');
} else {
  await main();
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const quick = argv.includes('--quick');
  const opt = (name: string, fallback: number): number => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : fallback;
  };
  const FRAMES = opt('--frames', quick ? 2000 : 20_000);
  const ROUNDS = opt('--rounds', quick ? 1 : 2);
  const SECONDS = opt('--seconds', quick ? 3 : 10);
  const syncAt = argv.indexOf('--broker-sync');
  const brokerSync = syncAt >= 0 ? argv[syncAt + 1] : 'periodic';
  if (brokerSync !== 'always' && brokerSync !== 'periodic') {
    process.stderr.write(`--broker-sync must be always or periodic, got ${String(brokerSync)}\n`);
    process.exit(2);
  }

  const missing = activeMqMissing();
  if (missing) {
    process.stderr.write(`bench:gateway needs ActiveMQ: ${missing} (apt-get install -y activemq)\n`);
    process.exit(2);
  }

  const work = mkdtempSync(join(tmpdir(), 'swf-bench-gateway-'));
  const broker = await startActiveMq({ journalSync: brokerSync });
  let clientNo = 0;
  const newClient = (id = `bench-${process.pid}-${++clientNo}`): Promise<StompConnection> => client(broker.url, id);

  /** Publishes frames with receipts, `WINDOW` in flight. Returns the seconds taken. */
  async function publish(c: StompConnection, destination: string, n: number): Promise<number> {
    const t0 = performance.now();
    for (let i = 0; i < n; i += WINDOW) {
      const batch = [];
      for (let k = i; k < Math.min(n, i + WINDOW); k++) batch.push(c.publish(destination, frameBody(k), headers));
      await Promise.all(batch);
    }
    return (performance.now() - t0) / 1000;
  }

  const waitUntil = async (cond: () => boolean): Promise<void> => {
    while (!cond()) await new Promise((r) => setTimeout(r, 5));
  };

  /** The subscription a plain consumer makes: what the gateway makes for a topic (gateway.ts). */
  const plainSubscription = (name: string): Record<string, string> => ({
    id: name,
    ack: 'client-individual',
    'activemq.prefetchSize': '1000',
    'activemq.subscriptionName': name,
  });

  /** A durable subscription with `n` frames waiting: subscribe once, go away, publish. */
  async function backlog(clientId: string, topic: string, n: number): Promise<void> {
    const first = await newClient(clientId);
    await first.subscribe({ destination: topic, headers: plainSubscription(clientId), onMessage: () => {} });
    await first.stop();
    const pub = await newClient();
    await publish(pub, topic, n);
    await pub.stop();
  }

  /** A plain consumer acknowledging each frame on arrival; `onFrame` sees its headers first. */
  function plainConsumer(
    clientId: string,
    topic: string,
    onFrame: (h: Record<string, string>) => void,
  ): StompConnection {
    const c = new StompConnection({
      url: broker.url,
      clientId,
      reconnectDelayMs: 100,
      maxReconnectDelayMs: 1000,
      heartbeatMs: 0,
      logger,
    });
    void c.subscribe({
      destination: topic,
      headers: plainSubscription(clientId),
      onMessage: (m) => {
        onFrame(m.headers);
        m.ack();
      },
    });
    c.start();
    return c;
  }

  // ---- warm-up: the broker's JIT, so the first figure measured is not its cold start --------------------
  async function warmUp(): Promise<void> {
    const topic = '/topic/bench.warm';
    await backlog('bench-warm', topic, Math.min(FRAMES, 5000));
    let got = 0;
    const c = plainConsumer('bench-warm', topic, () => got++);
    await waitUntil(() => got >= Math.min(FRAMES, 5000));
    await c.stop();
  }

  // ---- inbound ----------------------------------------------------------------------------------------
  /** CPU time of this process (all its threads) per frame, in microseconds: less swayed by the machine's load. */
  const cpu = { plainIn: 0, gwIn: 0 };
  const cpuSince = (start: NodeJS.CpuUsage): number => {
    const d = process.cpuUsage(start);
    return d.user + d.system;
  };

  async function plainInbound(round: number): Promise<number> {
    const topic = `/topic/bench.plain.${round}`;
    const id = `bench-plain-${round}`;
    await backlog(id, topic, FRAMES);
    let got = 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const c = plainConsumer(id, topic, () => got++);
    await waitUntil(() => got >= FRAMES);
    const s = (performance.now() - t0) / 1000;
    cpu.plainIn += cpuSince(cpu0);
    await c.stop();
    return s;
  }

  async function gatewayInbound(round: number): Promise<number> {
    const topic = `/topic/bench.gateway.${round}`;
    const store = await openEventStore(`sqlite:${join(work, `inbound-${round}.db`)}`, { durable: true });
    const cfg = brokerSchema.parse({
      url: broker.url,
      client_id: `bench-gw-in-${round}`,
      destinations: [topic],
      heartbeat_ms: 0,
    });
    const gwOptions = { store, broker: cfg, namespace: 'torre1', logger, leaseFactor: 3, outbound: false };
    const first = startGateway(gwOptions);
    await first.ready;
    await first.stop();
    const pub = await newClient();
    await publish(pub, topic, FRAMES);
    await pub.stop();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const gw = startGateway(gwOptions);
    await waitUntil(() => gw.stats.recorded >= FRAMES);
    const s = (performance.now() - t0) / 1000;
    cpu.gwIn += cpuSince(cpu0);
    await gw.stop();
    await store.close();
    return s;
  }

  // ---- outbound ---------------------------------------------------------------------------------------
  async function plainOutbound(round: number): Promise<number> {
    const pub = await newClient();
    const s = await publish(pub, `/topic/bench.out.plain.${round}`, FRAMES);
    await pub.stop();
    return s;
  }

  async function gatewayOutbound(round: number): Promise<number> {
    const store = await openEventStore(`sqlite:${join(work, `outbound-${round}.db`)}`, { durable: true });
    const clientId = `bench-gw-out-${round}`;
    // The outbox starts after this checkpoint: the frames to send are appended after it, before the gateway runs.
    await store.appendToStream('bench-start', [{ type: 'BenchStarted', data: {} }]);
    await store.checkpoints.set(`gateway:${clientId}:outbox`, (await store.headPosition())!);
    for (let i = 0; i < FRAMES; i += 500) {
      const events = [];
      for (let k = i; k < Math.min(FRAMES, i + 500); k++) {
        const body = JSON.parse(frameBody(k)) as Record<string, unknown>;
        events.push({ type: 'slice', data: { ...body, namespace: 'torre1' }, metadata: { schemaVersion: 1 } });
      }
      await store.appendToStream('slices-100010', events);
    }
    const cfg = brokerSchema.parse({
      url: broker.url,
      client_id: clientId,
      destinations: ['/topic/bench.unused'],
      slice_destination: `/topic/bench.out.gateway.${round}`,
      heartbeat_ms: 0,
    });
    const t0 = performance.now();
    const gw = startGateway({ store, broker: cfg, namespace: 'torre1', logger, leaseFactor: 3 });
    await waitUntil(() => gw.stats.published >= FRAMES);
    const s = (performance.now() - t0) / 1000;
    await gw.stop();
    await store.close();
    return s;
  }

  // ---- latency ----------------------------------------------------------------------------------------
  const total = RATE * SECONDS;
  const msSince = (h: Record<string, string>): number | undefined => {
    const sent = h[SENT_HEADER];
    return sent === undefined ? undefined : Number(now() - BigInt(sent)) / 1e6;
  };
  const paced = (topic: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const w = new Worker(new URL(import.meta.url), { workerData: { url: broker.url, topic, total } });
      w.once('message', () => resolve());
      w.once('error', reject);
      w.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`paced publisher exited with ${code}`))));
    });

  async function plainLatency(): Promise<number[]> {
    const topic = '/topic/bench.latency.plain';
    const samples: number[] = [];
    const c = plainConsumer('bench-lat-plain', topic, (h) => {
      const ms = msSince(h);
      if (ms !== undefined) samples.push(ms);
    });
    await new Promise<void>((r) => c.onConnected(r));
    await paced(topic);
    await waitUntil(() => samples.length >= total);
    await c.stop();
    return samples;
  }

  async function gatewayLatency(): Promise<{ sendToCommit: number[]; arrivalToCommit: number[] }> {
    const topic = '/topic/bench.latency.gateway';
    const store = await openEventStore(`sqlite:${join(work, 'latency.db')}`, { durable: true });
    const sendToCommit: number[] = [];
    const arrivalToCommit: number[] = [];
    const cfg = brokerSchema.parse({
      url: broker.url,
      client_id: 'bench-gw-lat',
      destinations: [topic],
      heartbeat_ms: 0,
    });
    const gw = startGateway({
      store,
      broker: cfg,
      namespace: 'torre1',
      logger,
      leaseFactor: 3,
      outbound: false,
      onRecorded: (h, receivedAt) => {
        const ms = msSince(h);
        if (ms !== undefined) sendToCommit.push(ms);
        arrivalToCommit.push(performance.now() - receivedAt);
      },
    });
    await gw.ready;
    await paced(topic);
    await waitUntil(() => sendToCommit.length >= total);
    await gw.stop();
    await store.close();
    return { sendToCommit, arrivalToCommit };
  }

  const quantiles = (xs: number[]): { p50: number; p99: number; max: number } => {
    const s = [...xs].sort((a, b) => a - b);
    const at = (q: number): number => +s[Math.min(s.length - 1, Math.floor(q * s.length))]!.toFixed(2);
    return { p50: at(0.5), p99: at(0.99), max: +s[s.length - 1]!.toFixed(2) };
  };

  try {
    const load = loadavg().map((x) => +x.toFixed(2));
    await warmUp();
    const t = { plainIn: 0, gwIn: 0, plainOut: 0, gwOut: 0 };
    const rounds: Record<string, number>[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const plainIn = await plainInbound(r);
      const gwIn = await gatewayInbound(r);
      const plainOut = await plainOutbound(r);
      const gwOut = await gatewayOutbound(r);
      t.plainIn += plainIn;
      t.gwIn += gwIn;
      t.plainOut += plainOut;
      t.gwOut += gwOut;
      rounds.push({
        inbound_gateway_per_s: Math.round(FRAMES / gwIn),
        inbound_plain_per_s: Math.round(FRAMES / plainIn),
        outbound_gateway_per_s: Math.round(FRAMES / gwOut),
        outbound_plain_per_s: Math.round(FRAMES / plainOut),
      });
    }
    const plainLat = quantiles(await plainLatency());
    const gwLat = await gatewayLatency();
    const sendToCommit = quantiles(gwLat.sendToCommit);
    const arrivalToCommit = quantiles(gwLat.arrivalToCommit);
    const perS = (seconds: number): number => Math.round((FRAMES * ROUNDS) / seconds);
    const result = {
      frames: FRAMES,
      rounds: ROUNDS,
      broker_journal_sync: brokerSync,
      load_average_at_start: load,
      load_average_at_end: loadavg().map((x) => +x.toFixed(2)),
      inbound: {
        gateway_per_s: perS(t.gwIn),
        plain_consumer_per_s: perS(t.plainIn),
        ratio: +(t.plainIn / t.gwIn).toFixed(2),
        cpu_us_per_frame: {
          gateway: Math.round(cpu.gwIn / (FRAMES * ROUNDS)),
          plain_consumer: Math.round(cpu.plainIn / (FRAMES * ROUNDS)),
        },
      },
      outbound: {
        gateway_per_s: perS(t.gwOut),
        plain_producer_per_s: perS(t.plainOut),
        ratio: +(t.plainOut / t.gwOut).toFixed(2),
      },
      latency_ms_at_500_per_s: {
        seconds: SECONDS,
        gateway_send_to_commit: sendToCommit,
        plain_send_to_arrival: plainLat,
        gateway_arrival_to_commit: arrivalToCommit,
      },
      per_round: rounds,
    };
    const lat = (q: { p50: number; p99: number; max: number }): string =>
      `p50 ${q.p50} ms  p99 ${q.p99} ms  max ${q.max} ms`;
    process.stdout.write(
      `broker journal sync: ${brokerSync}; load average ${load.join(' ')} at start, ${result.load_average_at_end.join(' ')} at end\n` +
        `inbound   gateway ${result.inbound.gateway_per_s}/s   plain consumer ${result.inbound.plain_consumer_per_s}/s   ratio ${result.inbound.ratio} (goal >= 0.5)\n` +
        `          CPU per frame: gateway ${result.inbound.cpu_us_per_frame.gateway} µs, plain consumer ${result.inbound.cpu_us_per_frame.plain_consumer} µs\n` +
        `outbound  gateway ${result.outbound.gateway_per_s}/s   plain producer ${result.outbound.plain_producer_per_s}/s   ratio ${result.outbound.ratio} (goal >= 0.5)\n` +
        `latency at ${RATE}/s for ${SECONDS} s, send to committed event: ${lat(sendToCommit)} (goal p99 < 20 ms)\n` +
        `          plain consumer, send to arrival: ${lat(plainLat)}\n` +
        `          gateway, arrival to committed event: ${lat(arrivalToCommit)}\n` +
        `${JSON.stringify(result)}\n`,
    );
  } finally {
    await broker.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}
