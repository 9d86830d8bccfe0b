/**
 * Outbound: the log → the broker. Follows the log from its checkpoint and publishes every wire message an
 * swf-es agent appended in this namespace (never one the gateway recorded) to the destination the real testbed
 * uses for it, with the headers real agents and transformers select on. A frame counts as sent when the
 * broker's receipt arrives; the checkpoint moves only past frames that did. After a crash or a lost
 * connection, frames after the checkpoint go again, under the same event id (`swf-event-id`), never a new one.
 */
import type { StompHeaders } from '@stomp/stompjs';
import type { Logger } from 'pino';
import type { BrokerConfig } from '../config/schema.js';
import type { EventStore, StoredEvent, Subscription } from '../eventStore/eventStore.js';
import { isBrokerRecorded, isMessageType } from '../messages/index.js';
import { EVENT_ID_HEADER, GATEWAY_HEADER, type Recorder } from './recorder.js';
import { isBrokerDisconnectedError, routingTypeOf, type StompConnection } from './stomp.js';

export interface OutboxOptions {
  store: EventStore;
  broker: BrokerConfig;
  connection: StompConnection;
  namespace: string;
  gatewayId: string;
  logger: Logger;
  recorder: Recorder;
  stats: { published: number };
}

export interface Outbox {
  done: Promise<void>;
  stop(): Promise<void>;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Where the real testbed sends a message (undefined: it does not go on the broker). */
export function brokerDestinationOf(
  type: string,
  data: Record<string, unknown>,
  broker: BrokerConfig,
): string | undefined {
  switch (type) {
    case 'run_imminent':
    case 'start_run':
    case 'stf_gen':
    case 'pause_run':
    case 'resume_run':
    case 'stf_ready':
    case 'tf_file_registered':
      return broker.epic_destination;
    case 'end_run':
      return data.content !== undefined ? broker.workers_destination : broker.epic_destination;
    case 'run_imminent_worker':
      return broker.workers_destination;
    case 'slice':
      return broker.slice_destination;
    case 'slice_result':
      return broker.results_destination;
    default:
      return undefined;
  }
}

/** The frame for one stored message: its body (slices with their unique stamp) and the testbed's headers. */
export function outboundFrame(
  e: Pick<StoredEvent, 'id' | 'type' | 'data'>,
  options: { broker: BrokerConfig; gatewayId: string; recorder: Recorder },
): { destination: string; body: string; headers: StompHeaders } | undefined {
  if (!isMessageType(e.type) || !isRecord(e.data)) return undefined;
  const destination = brokerDestinationOf(e.type, e.data, options.broker);
  if (destination === undefined) return undefined;
  let body = e.data;
  const content = isRecord(body.content) ? body.content : undefined;
  if (e.type === 'slice' && content && typeof content.tf_filename === 'string') {
    const stamp = options.recorder.publishedStamp(
      content.tf_filename,
      typeof content.attempt === 'number' ? content.attempt : 1,
    );
    if (stamp !== undefined) body = { ...body, created_at: stamp };
  }
  const runId = typeof body.run_id === 'string' ? body.run_id : undefined;
  const headers: StompHeaders = {
    msg_type: e.type,
    ...(typeof body.namespace === 'string' ? { namespace: body.namespace } : {}),
    ...(runId !== undefined ? { run_id: runId } : {}),
    vo: options.broker.vo,
    persistent: 'true',
    'content-type': 'application/json',
    ...(e.type === 'slice' ? { ttl: String(options.broker.slice_ttl_ms) } : {}),
    // Artemis without the testbed's acceptor prefixes routes by this header (docs/broker.md); ActiveMQ 5 by the prefix.
    ...(options.broker.flavor === 'artemis' ? { 'destination-type': routingTypeOf(destination) } : {}),
    [GATEWAY_HEADER]: options.gatewayId,
    [EVENT_ID_HEADER]: e.id,
  };
  return { destination, body: JSON.stringify(body), headers };
}

const BATCH = 256;

export function startOutbox(options: OutboxOptions): Outbox {
  const { store, connection, namespace, logger, recorder, stats } = options;
  const checkpointName = `gateway:${options.gatewayId}:outbox`;
  let stopping = false;
  let subscription: Subscription | undefined;
  let wake: (() => void) | undefined;
  connection.onConnected(() => wake?.());

  const waitForConnection = async (): Promise<void> => {
    while (!connection.connected && !stopping) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 1000).unref();
      });
    }
  };

  const publishBatch = async (batch: StoredEvent[]): Promise<void> => {
    const frames = [];
    for (const e of batch) {
      recorder.learn(e);
      if (isBrokerRecorded(e.metadata)) continue;
      const ns = isRecord(e.data) && typeof e.data.namespace === 'string' ? e.data.namespace : undefined;
      if (ns !== namespace) continue;
      const frame = outboundFrame(e, options);
      if (frame) frames.push(frame);
    }
    for (;;) {
      await waitForConnection();
      if (stopping) return;
      try {
        await Promise.all(frames.map((f) => connection.publish(f.destination, f.body, f.headers)));
        stats.published += frames.length;
        return;
      } catch (e: unknown) {
        if (!isBrokerDisconnectedError(e)) throw e;
        // Sent again after the reconnect, under the same event ids.
        logger.warn(`outbox: ${e.message}; sending the batch again after reconnecting`);
      }
    }
  };

  const loop = async (): Promise<void> => {
    const checkpoint = await store.checkpoints.get(checkpointName);
    // A new gateway publishes what is appended from now on, not the history of the log.
    const from = checkpoint ?? (await store.headPosition()) ?? 'start';
    if (stopping) return;
    subscription = store.subscribeToAll({ from });
    const iterator = subscription[Symbol.asyncIterator]();
    for (;;) {
      const next = await iterator.next();
      if (next.done || stopping) return;
      const batch = [next.value, ...(subscription.drain?.(BATCH - 1) ?? [])];
      await publishBatch(batch);
      if (stopping) return;
      await store.checkpoints.set(checkpointName, batch[batch.length - 1]!.position);
    }
  };

  const done = loop();
  return {
    done,
    async stop() {
      stopping = true;
      wake?.();
      await subscription?.unsubscribe();
      await done.catch(() => {});
    },
  };
}
