/** STOMP clients for the broker tests (publishers, stand-ins for real agents) and polling of the store. */
import { pino } from 'pino';
import { brokerSchema, type BrokerConfig } from '../../src/config/schema.js';
import type { EventStore, StoredEvent } from '../../src/eventStore/eventStore.js';
import { StompConnection } from '../../src/broker/stomp.js';
import { openEventStore } from '../../src/eventStore/open.js';
import { type RunningGateway, startGateway } from '../../src/broker/gateway.js';
import { type CorpusFrame, publishedFrames, publisherHeaders } from './corpus.js';

export const silent = pino({ level: 'silent' });

let clients = 0;

/** A plain STOMP client (what a real agent would be), connected. */
export async function stompClient(
  url: string,
  clientId = `test-client-${process.pid}-${++clients}`,
  login: { user?: string; password?: string } = {},
): Promise<StompConnection> {
  const c = new StompConnection({
    url,
    clientId,
    user: login.user,
    password: login.password,
    reconnectDelayMs: 100,
    maxReconnectDelayMs: 1000,
    heartbeatMs: 0,
    logger: silent,
  });
  const connected = new Promise<void>((resolve) => c.onConnected(resolve));
  c.start();
  await connected;
  return c;
}

/** Publishes corpus frames as their senders did: same destination, headers and body, in order, with receipts. */
export async function publishCorpus(client: StompConnection, frames: readonly CorpusFrame[]): Promise<void> {
  for (const f of frames) {
    await client.publish(f.destination, JSON.stringify(f.body), publisherHeaders(f));
  }
}

export function brokerConfig(url: string, overrides: Partial<Record<keyof BrokerConfig, unknown>> = {}): BrokerConfig {
  return brokerSchema.parse({
    url,
    reconnect_delay_ms: 100,
    max_reconnect_delay_ms: 1000,
    heartbeat_ms: 0,
    ...overrides,
  });
}

/** A record-only gateway on `store` (no outbound), connected with its subscriptions in place. */
export async function recordingGateway(
  url: string,
  store: EventStore,
  clientId: string,
  overrides: Partial<Record<keyof BrokerConfig, unknown>> = {},
): Promise<RunningGateway> {
  const gateway = startGateway({
    store,
    broker: brokerConfig(url, { client_id: clientId, ...overrides }),
    namespace: 'torre1',
    logger: silent,
    leaseFactor: 3,
    outbound: false,
  });
  await gateway.ready;
  return gateway;
}

/**
 * The corpus recorded through a real broker, as `swf gateway --record-only` records a real run: its published
 * frames sent in order with their headers, every one recorded, the gateway stopped. Returns the recorded frames.
 */
export async function recordCorpusThroughBroker(
  url: string,
  store: EventStore,
  publisher: StompConnection,
  clientId: string,
): Promise<StoredEvent[]> {
  const gateway = await recordingGateway(url, store, clientId);
  const frames = publishedFrames();
  await publishCorpus(publisher, frames);
  const recorded = await waitForFrames(store, frames.length).catch((e: unknown) => {
    throw new Error(`${String(e)}; gateway ${JSON.stringify(gateway.stats)}`);
  });
  await gateway.stop();
  return recorded;
}

export async function allEvents(store: EventStore): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  for await (const e of store.readAll()) out.push(e);
  return out;
}

const meta = (e: StoredEvent): Record<string, unknown> => (e.metadata ?? {}) as Record<string, unknown>;

/** Events that are broker frames as recorded (not what the gateway derived from them). */
export const recordedFrames = (events: readonly StoredEvent[]): StoredEvent[] =>
  events.filter((e) => meta(e).origin === 'broker');

/** Polls until `check` returns a value, or fails after the deadline. */
/** The frames recorded in the store at `url` (opened and closed for the count). */
export async function countFrames(url: string): Promise<number> {
  const store = await openEventStore(url);
  try {
    return recordedFrames(await allEvents(store)).length;
  } finally {
    await store.close();
  }
}

export async function waitFor<T>(
  what: string | (() => string | Promise<string>),
  check: () => Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : await what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until the store holds `n` recorded frames. */
export async function waitForFrames(store: EventStore, n: number, timeoutMs = 60_000): Promise<StoredEvent[]> {
  let last = 0;
  return waitFor(
    () => `${n} recorded frames (have ${last})`,
    async () => {
      const frames = recordedFrames(await allEvents(store));
      last = frames.length;
      return frames.length >= n ? frames : undefined;
    },
    timeoutMs,
  );
}
