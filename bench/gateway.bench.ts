/**
 * `npm run bench:gateway`: `swf gateway` against a local ActiveMQ 5 (Debian's package, started here from a folder
 * of its own), each figure beside a plain STOMP client doing the same work in the same run:
 * - inbound: frames recorded per second from a durable subscription's backlog into a SQLite store (durable
 *   commits), beside a plain consumer acknowledging the same backlog (goal: at least half);
 * - outbound: frames published per second from the log with receipts, beside a plain producer with receipts
 *   (goal: at least half);
 * - latency at 500 frames/s: from the publisher's send to the committed event (broker hop included), p50 and
 *   p99 (goal: p99 below 20 ms).
 *
 * Options: --frames N (default 20000), --seconds S at 500/s (default 10), --quick (2000 frames, 3 s).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { startGateway } from '../src/broker/gateway.js';
import { StompConnection } from '../src/broker/stomp.js';
import { brokerSchema } from '../src/config/schema.js';
import { openEventStore } from '../src/eventStore/open.js';
import { activeMqMissing, startActiveMq } from './activemq.js';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const opt = (name: string, fallback: number): number => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const FRAMES = opt('--frames', quick ? 2000 : 20_000);
const SECONDS = opt('--seconds', quick ? 3 : 10);
const RATE = 500;
const WINDOW = 256;
const logger = pino({ level: 'silent' });

const missing = activeMqMissing();
if (missing) {
  process.stderr.write(`bench:gateway needs ActiveMQ: ${missing} (apt-get install -y activemq)\n`);
  process.exit(2);
}

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

const work = mkdtempSync(join(tmpdir(), 'swf-bench-gateway-'));
const broker = await startActiveMq();
let clientNo = 0;

async function client(clientId = `bench-${process.pid}-${++clientNo}`): Promise<StompConnection> {
  const c = new StompConnection({
    url: broker.url,
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

/** Publishes frames with receipts, `WINDOW` in flight. Returns the seconds taken. */
async function publish(
  c: StompConnection,
  destination: string,
  n: number,
  extra: Record<string, string> = {},
): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i += WINDOW) {
    const batch = [];
    for (let k = i; k < Math.min(n, i + WINDOW); k++)
      batch.push(c.publish(destination, frameBody(k), { ...headers, ...extra }));
    await Promise.all(batch);
  }
  return (performance.now() - t0) / 1000;
}

const waitUntil = async (cond: () => boolean): Promise<void> => {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
};

// ---- inbound ----------------------------------------------------------------------------------------
async function plainConsumer(): Promise<number> {
  const topic = '/topic/bench.plain';
  const subHeaders = {
    id: 'plain',
    ack: 'client-individual',
    'activemq.prefetchSize': '1000',
    'activemq.subscriptionName': 'plain',
  };
  let got = 0;
  const onMessage = (m: { ack(): void }): void => {
    got++;
    m.ack();
  };
  const first = await client('bench-plain-consumer');
  await first.subscribe({ destination: topic, headers: subHeaders, onMessage });
  await first.stop();
  const pub = await client();
  await publish(pub, topic, FRAMES);
  await pub.stop();
  const t0 = performance.now();
  const consumer = new StompConnection({
    url: broker.url,
    clientId: 'bench-plain-consumer',
    reconnectDelayMs: 100,
    maxReconnectDelayMs: 1000,
    heartbeatMs: 0,
    logger,
  });
  void consumer.subscribe({ destination: topic, headers: subHeaders, onMessage });
  consumer.start();
  await waitUntil(() => got >= FRAMES);
  const s = (performance.now() - t0) / 1000;
  await consumer.stop();
  return FRAMES / s;
}

async function gatewayInbound(): Promise<number> {
  const topic = '/topic/bench.gateway';
  const store = await openEventStore(`sqlite:${join(work, 'inbound.db')}`, { durable: true });
  const broker0 = brokerSchema.parse({
    url: broker.url,
    client_id: 'bench-gw-in',
    destinations: [topic],
    heartbeat_ms: 0,
  });
  const first = startGateway({ store, broker: broker0, namespace: 'torre1', logger, leaseFactor: 3, outbound: false });
  await first.ready;
  await first.stop();
  const pub = await client();
  await publish(pub, topic, FRAMES);
  await pub.stop();
  const t0 = performance.now();
  const gw = startGateway({ store, broker: broker0, namespace: 'torre1', logger, leaseFactor: 3, outbound: false });
  await waitUntil(() => gw.stats.recorded >= FRAMES);
  const s = (performance.now() - t0) / 1000;
  await gw.stop();
  await store.close();
  return FRAMES / s;
}

// ---- outbound ---------------------------------------------------------------------------------------
async function plainProducer(): Promise<number> {
  const pub = await client();
  const s = await publish(pub, '/topic/bench.out.plain', FRAMES);
  await pub.stop();
  return FRAMES / s;
}

async function gatewayOutbound(): Promise<number> {
  const store = await openEventStore(`sqlite:${join(work, 'outbound.db')}`, { durable: true });
  const clientId = 'bench-gw-out';
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
    slice_destination: '/topic/bench.out.gateway',
    heartbeat_ms: 0,
  });
  const t0 = performance.now();
  const gw = startGateway({ store, broker: cfg, namespace: 'torre1', logger, leaseFactor: 3 });
  await waitUntil(() => gw.stats.published >= FRAMES);
  const s = (performance.now() - t0) / 1000;
  await gw.stop();
  await store.close();
  return FRAMES / s;
}

// ---- latency ----------------------------------------------------------------------------------------
async function latency(): Promise<{ p50: number; p99: number; max: number; n: number }> {
  const topic = '/topic/bench.latency';
  const store = await openEventStore(`sqlite:${join(work, 'latency.db')}`, { durable: true });
  const samples: number[] = [];
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
    onRecorded: (h) => {
      const sent = Number(h['bench-sent-at']);
      if (Number.isFinite(sent)) samples.push(performance.timeOrigin + performance.now() - sent);
    },
  });
  await gw.ready;
  const pub = await client();
  const total = RATE * SECONDS;
  const t0 = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    // Paced: frame i leaves at t0 + i/RATE.
    const due = t0 + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const sentAt = performance.timeOrigin + performance.now();
    pending.push(pub.publish(topic, frameBody(i), { ...headers, 'bench-sent-at': sentAt.toFixed(3) }));
  }
  await Promise.all(pending);
  await waitUntil(() => samples.length >= total);
  await pub.stop();
  await gw.stop();
  await store.close();
  samples.sort((a, b) => a - b);
  const at = (q: number): number => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]!;
  return { p50: at(0.5), p99: at(0.99), max: samples[samples.length - 1]!, n: samples.length };
}

try {
  const plainIn = await plainConsumer();
  const gwIn = await gatewayInbound();
  const plainOut = await plainProducer();
  const gwOut = await gatewayOutbound();
  const lat = await latency();
  const r = (x: number): number => Math.round(x);
  const result = {
    frames: FRAMES,
    inbound: { gateway_per_s: r(gwIn), plain_consumer_per_s: r(plainIn), ratio: +(gwIn / plainIn).toFixed(2) },
    outbound: { gateway_per_s: r(gwOut), plain_producer_per_s: r(plainOut), ratio: +(gwOut / plainOut).toFixed(2) },
    latency_ms_at_500_per_s: {
      p50: +lat.p50.toFixed(2),
      p99: +lat.p99.toFixed(2),
      max: +lat.max.toFixed(2),
      frames: lat.n,
    },
  };
  process.stdout.write(
    `inbound   gateway ${result.inbound.gateway_per_s}/s   plain consumer ${result.inbound.plain_consumer_per_s}/s   ratio ${result.inbound.ratio} (goal >= 0.5)\n` +
      `outbound  gateway ${result.outbound.gateway_per_s}/s   plain producer ${result.outbound.plain_producer_per_s}/s   ratio ${result.outbound.ratio} (goal >= 0.5)\n` +
      `latency at ${RATE}/s for ${SECONDS} s: p50 ${result.latency_ms_at_500_per_s.p50} ms  p99 ${result.latency_ms_at_500_per_s.p99} ms  max ${result.latency_ms_at_500_per_s.max} ms (goal p99 < 20 ms)\n` +
      `${JSON.stringify(result)}\n`,
  );
} finally {
  await broker.destroy();
  rmSync(work, { recursive: true, force: true });
}
