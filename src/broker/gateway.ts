/**
 * `swf gateway`: a store and a STOMP broker, joined. Inbound, every frame of the configured destinations becomes
 * an event (recorder.ts), acknowledged to the broker only once its commit returned (client-individual acks, a
 * durable store): a gateway killed at any moment loses no frame, and a redelivered frame repeats a commit the
 * store drops. Outbound (outbox.ts), what swf-es agents append goes to the broker.
 */
import type { Logger } from 'pino';
import type { BrokerConfig } from '../config/schema.js';
import type { EventStore } from '../eventStore/eventStore.js';
import { describeError } from '../errors.js';
import { type RecordDecision, Recorder } from './recorder.js';
import type { StompHeaders } from '@stomp/stompjs';
import { type InboundMessage, routingTypeOf, StompConnection } from './stomp.js';
import { startOutbox, type Outbox } from './outbox.js';

export interface GatewayOptions {
  store: EventStore;
  broker: BrokerConfig;
  namespace: string;
  logger: Logger;
  /** `[fast_processing] slice_lease_factor`: the lease a recorded transformer's slice gets. */
  leaseFactor: number;
  /** Publish what swf-es agents append (default true); false records only. */
  outbound?: boolean;
  /** The `parameter_values` of the executions recorded runs get (RecorderOptions.parameterValues). */
  parameterValues?: Record<string, unknown>;
  /**
   * Told of each frame once its event is committed, before the ack, with the `performance.now()` of its arrival
   * (measurements: bench:gateway).
   */
  onRecorded?: (headers: Record<string, string>, arrivedAt: number) => void;
}

export interface GatewayStats {
  recorded: number;
  rejected: number;
  foreign: number;
  ownSkipped: number;
  published: number;
}

export interface RunningGateway {
  /** Resolves once connected with every subscription in place (the first time). */
  ready: Promise<void>;
  /** Resolves when stopped; rejects when the store failed (frames stay unacknowledged on the broker). */
  done: Promise<void>;
  stats: GatewayStats;
  stop(): Promise<void>;
}

/**
 * The SUBSCRIBE headers for one destination. Every subscription acknowledges frame by frame; topics are durable.
 * ActiveMQ 5 names a durable subscription by `activemq.subscriptionName` and knows a topic from a queue by the
 * `/topic/` and `/queue/` prefixes. Artemis names it by `durable-subscription-name`, and takes each name as an
 * address of its own unless its acceptor sets `anycastPrefix=/queue/;multicastPrefix=/topic/`: so the gateway also
 * says the routing type (`subscription-type`), which a durable subscription must have as MULTICAST (docs/broker.md).
 */
export function subscriptionHeaders(broker: BrokerConfig, clientId: string, destination: string): StompHeaders {
  const topic = destination.startsWith('/topic/');
  const name = `${clientId}.${destination.replace(/^\/(topic|queue)\//, '')}`;
  const durable: StompHeaders = topic
    ? broker.flavor === 'activemq5'
      ? { 'activemq.subscriptionName': name }
      : { 'durable-subscription-name': name }
    : {};
  return {
    id: name,
    ack: 'client-individual',
    'activemq.prefetchSize': String(broker.prefetch),
    ...durable,
    ...(broker.flavor === 'artemis' ? { 'subscription-type': routingTypeOf(destination) } : {}),
  };
}

/** Streams whose events teach the recorder which run is which execution, and which slices results can match. */
const LEARN_PREFIXES = ['run-', 'slices-', 'execution-', 'fastproc-'];

export function startGateway(options: GatewayOptions): RunningGateway {
  const { store, broker, namespace, logger } = options;
  const clientId = broker.client_id ?? `swf-gateway-${namespace}`;
  const stats: GatewayStats = { recorded: 0, rejected: 0, foreign: 0, ownSkipped: 0, published: 0 };
  const recorder = new Recorder({
    namespace,
    maxBodyBytes: broker.max_body_bytes,
    leaseFactor: options.leaseFactor,
    gatewayId: clientId,
    ...(options.parameterValues ? { parameterValues: options.parameterValues } : {}),
  });
  const connection = new StompConnection({
    url: broker.url,
    user: broker.user,
    password: broker.password,
    clientId,
    reconnectDelayMs: broker.reconnect_delay_ms,
    maxReconnectDelayMs: broker.max_reconnect_delay_ms,
    heartbeatMs: broker.heartbeat_ms,
    logger,
  });

  if (broker.flavor === 'artemis' && broker.heartbeat_ms === 0) {
    logger.warn(
      { broker: broker.url },
      "Artemis closes a STOMP connection that sends no heart-beats once it has been quiet for the acceptor's " +
        "connectionTtl (60 s by default), and the gateway then reconnects; set broker.heartbeat_ms (the testbed's " +
        'agents use 30000) or raise connectionTtl on the acceptor',
    );
  }

  let stopping = false;
  let outbox: Outbox | undefined;
  let resolveDone!: () => void;
  let rejectDone!: (e: unknown) => void;
  const done = new Promise<void>((res, rej) => {
    resolveDone = res;
    rejectDone = rej;
  });
  let markReady!: () => void;
  let failReady!: (e: unknown) => void;
  const ready = new Promise<void>((res, rej) => {
    markReady = res;
    failReady = rej;
  });

  const fail = (e: unknown): void => {
    if (stopping) return;
    logger.error({ err: describeError(e) }, `gateway stops: ${describeError(e)}`);
    void shutdown().then(
      () => rejectDone(e),
      () => rejectDone(e),
    );
    failReady(e);
  };

  const onFrame = (m: InboundMessage): void => {
    if (stopping) return;
    const arrivedAt = performance.now();
    let decision;
    try {
      decision = recorder.decide({
        destination: m.destination,
        headers: m.headers,
        body: m.body,
        bytes: m.bytes,
        receivedAt: new Date(),
      });
    } catch (e: unknown) {
      fail(e);
      return;
    }
    if (decision.kind === 'own') {
      stats.ownSkipped++;
      m.ack();
      return;
    }
    waiting.push({ m, decision, arrivedAt });
    if (!committing && !scheduled) {
      // After the other frames this turn of the event loop reads: they commit together.
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        if (!committing) commitWaiting();
      });
    }
  };

  // The frames that have arrived commit together: the ones read in one turn of the event loop, and those that
  // arrive while a commit is under way, after it. Each frame is its own commit (all or nothing on its own: a
  // frame delivered again after a crash repeats a commit the store drops, without failing the others), and the
  // SQLite store runs the commits of one turn as one transaction with one fsync. Once all have returned, the
  // committed frames are acknowledged in one write to the broker.
  type Waiting = { m: InboundMessage; decision: Extract<RecordDecision, { kind: 'record' }>; arrivedAt: number };
  let waiting: Waiting[] = [];
  let committing = false;
  let scheduled = false;
  const commitBatch = async (batch: Waiting[]): Promise<void> => {
    const results = await Promise.allSettled(
      batch.map(({ decision }) => Promise.resolve().then(() => store.commit(decision.appends))),
    );
    let failure: { reason: unknown } | undefined;
    connection.batch(() => {
      results.forEach((r, i) => {
        if (r.status === 'rejected') {
          failure ??= { reason: r.reason as unknown };
          return;
        }
        const { m, decision, arrivedAt } = batch[i]!;
        stats.recorded++;
        if (decision.rejected !== undefined) {
          stats.rejected++;
          logger.warn(
            { destination: m.destination, messageId: m.headers['message-id'] },
            `recorded a rejected frame from ${m.destination}: ${decision.rejected}`,
          );
        }
        if (decision.foreign !== undefined) stats.foreign++;
        options.onRecorded?.(m.headers, arrivedAt);
        m.ack();
      });
    });
    // Frames whose commit failed stay unacknowledged: the broker delivers them again to the next gateway.
    if (failure) throw failure.reason;
  };
  const commitWaiting = (): void => {
    committing = true;
    void (async () => {
      while (waiting.length > 0 && !stopping) {
        const batch = waiting;
        waiting = [];
        await commitBatch(batch);
      }
    })().then(
      () => (committing = false),
      (e: unknown) => fail(e),
    );
  };

  const start = async (): Promise<void> => {
    // What the log already holds: which execution each run is, which slices a result can match.
    for await (const e of store.readAll({ filter: { streamPrefix: LEARN_PREFIXES } })) recorder.learn(e);
    if (stopping) return;
    for (const destination of broker.destinations) {
      void connection.subscribe({
        destination,
        headers: subscriptionHeaders(broker, clientId, destination),
        onMessage: onFrame,
      });
    }
    let first = true;
    // A refused login stops the gateway (exit 1 from `swf gateway`) rather than retrying forever.
    connection.onRefused(fail);
    connection.onConnected(() => {
      if (first) {
        first = false;
        logger.info({ broker: broker.url }, `connected to ${broker.url}; recording ${broker.destinations.join(', ')}`);
        markReady();
      }
    });
    if (options.outbound !== false) {
      outbox = startOutbox({ store, broker, connection, namespace, gatewayId: clientId, logger, recorder, stats });
      outbox.done.catch(fail);
    }
    connection.start();
  };

  const shutdown = async (): Promise<void> => {
    stopping = true;
    await outbox?.stop();
    await connection.stop();
  };

  start().catch(fail);

  return {
    ready,
    done,
    stats,
    async stop() {
      if (stopping) return done;
      await shutdown();
      resolveDone();
      return done;
    },
  };
}
