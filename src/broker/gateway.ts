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
import { type InboundMessage, StompConnection } from './stomp.js';
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
  /** Told of each frame once its event is committed, before the ack (measurements: bench:gateway). */
  onRecorded?: (headers: Record<string, string>) => void;
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
    waiting.push({ m, decision });
    if (!committing && !scheduled) {
      // After the other frames this turn of the event loop reads: they commit together.
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        if (!committing) commitWaiting();
      });
    }
  };

  // Frames arriving while a commit is under way wait for it, then all commit in one turn of the event loop, which
  // the SQLite store makes one transaction and one fsync (each frame still all-or-nothing on its own): a burst
  // costs about one durable commit, an idle gateway commits a lone frame at once.
  type Waiting = { m: InboundMessage; decision: Extract<RecordDecision, { kind: 'record' }> };
  let waiting: Waiting[] = [];
  let committing = false;
  let scheduled = false;
  const commitWaiting = (): void => {
    const batch = waiting;
    waiting = [];
    committing = true;
    const commits = batch.map(({ m, decision }) =>
      Promise.resolve()
        .then(() => store.commit(decision.appends))
        .then(
          () => {
            stats.recorded++;
            if (decision.rejected !== undefined) {
              stats.rejected++;
              logger.warn(
                { destination: m.destination, messageId: m.headers['message-id'] },
                `recorded a rejected frame from ${m.destination}: ${decision.rejected}`,
              );
            }
            if (decision.foreign !== undefined) stats.foreign++;
            options.onRecorded?.(m.headers);
            m.ack();
          },
          (e: unknown) => fail(e),
        ),
    );
    void Promise.all(commits).then(() => {
      committing = false;
      if (waiting.length > 0 && !stopping) commitWaiting();
    });
  };

  const subscribeHeaders = (destination: string): Record<string, string> => {
    const topic = destination.startsWith('/topic/');
    const name = `${clientId}.${destination.replace(/^\/(topic|queue)\//, '')}`;
    return {
      id: name,
      ack: 'client-individual',
      'activemq.prefetchSize': String(broker.prefetch),
      ...(topic
        ? broker.flavor === 'activemq5'
          ? { 'activemq.subscriptionName': name }
          : { 'durable-subscription-name': name, 'subscription-type': 'MULTICAST' }
        : {}),
    };
  };

  const start = async (): Promise<void> => {
    // What the log already holds: which execution each run is, which slices a result can match.
    for await (const e of store.readAll({ filter: { streamPrefix: LEARN_PREFIXES } })) recorder.learn(e);
    if (stopping) return;
    for (const destination of broker.destinations) {
      void connection.subscribe({ destination, headers: subscribeHeaders(destination), onMessage: onFrame });
    }
    let first = true;
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
