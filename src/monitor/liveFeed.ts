/**
 * The live message feed (`GET /api/messages/stream/`): Server-Sent Events, one per workflow message, with the
 * message's log position as its id.
 *
 * One catch-up subscription to the log feeds every client. A client that sends `Last-Event-ID` (or asks
 * `?from=start`) is registered first (live events are held back for it), then reads the stored messages after that
 * position from the log; when the read reaches the end, the held-back events after the last position read are
 * sent and the client goes live. Positions decide what was sent, so there is no gap and no duplicate.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { EventStore, StoredEvent, Subscription } from '../eventStore/eventStore.js';
import { describeError, ValidationError } from '../errors.js';
import { MESSAGE_TYPES } from '../messages/schemas.js';
import { isWorkflowMessageType } from '../projections/otherProjections.js';

export const WORKFLOW_MESSAGE_TYPES: readonly string[] = MESSAGE_TYPES.filter(isWorkflowMessageType);

export interface FeedFilters {
  msgTypes?: ReadonlySet<string>;
  agents?: ReadonlySet<string>;
  runIds?: ReadonlySet<string>;
  namespace?: string;
}

interface Client {
  id: string;
  res: ServerResponse;
  filters: FeedFilters;
  /** The last log position this client has been given (or skipped as not matching). */
  cursor: bigint;
  /** While replaying: live events waiting for the replay to reach the end. */
  held: StoredEvent[] | undefined;
  connectedAt: string;
}

export interface LiveFeedOptions {
  heartbeatMs?: number;
  logger?: Pick<Logger, 'warn' | 'debug'>;
  /** A client whose unsent output passes this many bytes is dropped (it reconnects with Last-Event-ID). */
  maxBufferedBytes?: number;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function list(
  raw: string | null,
  name: string,
  check?: (v: string) => string | undefined,
): ReadonlySet<string> | undefined {
  if (raw === null || raw.trim() === '') return undefined;
  if (raw.length > 4096) throw new ValidationError(`${name} is too long`, { field: name });
  const items = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const i of items) {
    const problem = check?.(i);
    if (problem) throw new ValidationError(`${name}: ${problem}`, { field: name });
    if (i.length > 256) throw new ValidationError(`${name}: an item is longer than 256 characters`, { field: name });
  }
  return new Set(items);
}

/** `?msg_types=&agents=&run_ids=&namespace=&from=` → filters and where to start. Bad values are ValidationErrors. */
export function parseFeedQuery(
  params: URLSearchParams,
  lastEventId: string | undefined,
): { filters: FeedFilters; from: bigint | undefined } {
  for (const key of new Set(params.keys())) {
    if (!['msg_types', 'agents', 'run_ids', 'namespace', 'from'].includes(key)) {
      throw new ValidationError(
        `unknown query parameter ${JSON.stringify(key.slice(0, 40))}; the stream takes msg_types, agents, run_ids, namespace, from`,
        { field: key.slice(0, 40) },
      );
    }
    if (params.getAll(key).length > 1)
      throw new ValidationError(`query parameter '${key}' is given more than once`, { field: key });
  }
  const msgTypes = list(params.get('msg_types'), 'msg_types', (t) =>
    WORKFLOW_MESSAGE_TYPES.includes(t)
      ? undefined
      : `unknown message type ${JSON.stringify(t.slice(0, 40))}; the feed carries ${WORKFLOW_MESSAGE_TYPES.join(', ')}`,
  );
  const runIds = list(params.get('run_ids'), 'run_ids', (r) =>
    /^\d{1,15}$/.test(r) ? undefined : `run ids are run numbers, got ${JSON.stringify(r.slice(0, 40))}`,
  );
  const agents = list(params.get('agents'), 'agents');
  const namespace = params.get('namespace') ?? undefined;
  if (namespace !== undefined && (namespace.length === 0 || namespace.length > 256)) {
    throw new ValidationError('namespace must be 1-256 characters', { field: 'namespace' });
  }
  // A reconnecting EventSource sends Last-Event-ID with its original URL: the header, being newer, wins over ?from=.
  const fromParam = params.get('from');
  let from: bigint | undefined;
  if (lastEventId !== undefined && lastEventId !== '') {
    if (!/^\d{1,18}$/.test(lastEventId)) {
      throw new ValidationError(
        `Last-Event-ID must be a log position, got ${JSON.stringify(lastEventId.slice(0, 40))}`,
        {
          field: 'Last-Event-ID',
        },
      );
    }
    from = BigInt(lastEventId);
  } else if (fromParam !== null) {
    if (fromParam === 'start') from = 0n;
    else if (/^\d{1,18}$/.test(fromParam)) from = BigInt(fromParam);
    else
      throw new ValidationError(
        `from must be 'start' or a log position, got ${JSON.stringify(fromParam.slice(0, 40))}`,
        {
          field: 'from',
        },
      );
  }
  return {
    filters: {
      ...(msgTypes ? { msgTypes } : {}),
      ...(agents ? { agents } : {}),
      ...(runIds ? { runIds } : {}),
      ...(namespace !== undefined ? { namespace } : {}),
    },
    from,
  };
}

export function matches(e: StoredEvent, f: FeedFilters): boolean {
  if (!isWorkflowMessageType(e.type) || !WORKFLOW_MESSAGE_TYPES.includes(e.type)) return false;
  const d = isRecord(e.data) ? e.data : {};
  if (f.msgTypes && !f.msgTypes.has(e.type)) return false;
  if (f.agents && !(typeof d.sender === 'string' && f.agents.has(d.sender))) return false;
  if (f.runIds && !(typeof d.run_id === 'string' && f.runIds.has(d.run_id))) return false;
  if (f.namespace !== undefined && d.namespace !== f.namespace) return false;
  return true;
}

/** One SSE frame for a stored message: `id` its position, `event` its msg_type, `data` the body enriched. */
export function frameOf(e: StoredEvent): string {
  const d = isRecord(e.data) ? e.data : {};
  const m = isRecord(e.metadata) ? e.metadata : {};
  const body = {
    ...d,
    position: Number(e.position),
    ...(d.sent_at === undefined && typeof d.created_at === 'string' ? { sent_at: d.created_at } : {}),
    ...(d.queue_name === undefined && typeof m.destination === 'string' ? { queue_name: m.destination } : {}),
  };
  return `id: ${e.position}\nevent: ${e.type}\ndata: ${JSON.stringify(body)}\n\n`;
}

export class LiveFeed {
  private readonly clients = new Map<string, Client>();
  private subscription: Subscription | undefined;
  private tail: Promise<void> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly heartbeatMs: number;
  private readonly maxBuffered: number;
  private readonly logger: Pick<Logger, 'warn' | 'debug'>;

  constructor(
    private readonly store: EventStore,
    options: LiveFeedOptions = {},
  ) {
    this.heartbeatMs = options.heartbeatMs ?? 15_000;
    this.maxBuffered = options.maxBufferedBytes ?? 16 * 1024 * 1024;
    this.logger = options.logger ?? { warn: () => {}, debug: () => {} };
  }

  /** Subscribes to the log's end; events from here on reach the clients. */
  async start(): Promise<void> {
    const head = await this.store.headPosition();
    // Only the workflow messages the feed carries: the store leaves the others (agent logs, heartbeats, records)
    // unread, so a burst of log writes costs the feed nothing. `matches` still checks each type exactly.
    this.subscription = this.store.subscribeToAll({
      from: head ?? 'start',
      filter: { eventTypePrefix: WORKFLOW_MESSAGE_TYPES },
    });
    const sub = this.subscription;
    this.tail = (async () => {
      try {
        for await (const e of sub) this.dispatch(e);
      } catch (err: unknown) {
        if (!this.closed) this.logger.warn({ err: describeError(err) }, 'the live feed lost its subscription');
      }
    })();
    this.heartbeat = setInterval(() => this.beat(), this.heartbeatMs);
    this.heartbeat.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const c of this.clients.values()) c.res.end();
    this.clients.clear();
    await this.subscription?.unsubscribe();
    await this.tail;
  }

  status(): { connected_clients: number; client_ids: string[]; client_filters: Record<string, unknown> } {
    const filters: Record<string, unknown> = {};
    for (const c of this.clients.values()) {
      filters[c.id] = {
        msg_types: c.filters.msgTypes ? [...c.filters.msgTypes] : null,
        agents: c.filters.agents ? [...c.filters.agents] : null,
        run_ids: c.filters.runIds ? [...c.filters.runIds] : null,
        namespace: c.filters.namespace ?? null,
        connected_at: c.connectedAt,
      };
    }
    return { connected_clients: this.clients.size, client_ids: [...this.clients.keys()], client_filters: filters };
  }

  /** Serves one client: headers, `connected`, the replay if asked, then live events until it disconnects. */
  async serve(
    req: IncomingMessage,
    res: ServerResponse,
    query: { filters: FeedFilters; from: bigint | undefined },
  ): Promise<void> {
    const client: Client = {
      id: randomUUID(),
      res,
      filters: query.filters,
      cursor: -1n,
      held: query.from !== undefined ? [] : undefined,
      connectedAt: new Date().toISOString(),
    };
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
      'X-Content-Type-Options': 'nosniff',
    });
    res.write(
      `retry: 2000\nevent: connected\ndata: ${JSON.stringify({ client_id: client.id, status: 'connected' })}\n\n`,
    );
    this.clients.set(client.id, client);
    const gone = (): void => {
      this.clients.delete(client.id);
    };
    req.on('close', gone);
    res.on('close', gone);
    if (query.from === undefined) return;
    try {
      client.cursor = query.from;
      for await (const e of this.store.readAll({ from: query.from + 1n })) {
        if (!this.clients.has(client.id)) return;
        client.cursor = e.position;
        if (!matches(e, client.filters)) continue;
        if (!res.write(frameOf(e)))
          await new Promise<void>((resolve) => res.once('drain', resolve).once('close', resolve));
      }
      const held = client.held ?? [];
      client.held = undefined;
      for (const e of held) this.send(client, e);
    } catch (err: unknown) {
      this.logger.warn({ err: describeError(err), client: client.id }, 'replay failed; closing the stream');
      gone();
      res.end();
    }
  }

  private dispatch(e: StoredEvent): void {
    for (const c of this.clients.values()) {
      if (c.held) c.held.push(e);
      else this.send(c, e);
    }
  }

  private send(c: Client, e: StoredEvent): void {
    if (e.position <= c.cursor) return;
    c.cursor = e.position;
    if (!matches(e, c.filters)) return;
    c.res.write(frameOf(e));
    if (c.res.writableLength > this.maxBuffered) {
      this.logger.warn(
        { client: c.id },
        'an SSE client is not reading; dropping it (it can resume with Last-Event-ID)',
      );
      this.clients.delete(c.id);
      c.res.destroy();
    }
  }

  private beat(): void {
    const frame = `event: heartbeat\ndata: ${JSON.stringify({ timestamp: Date.now() / 1000 })}\n\n`;
    for (const c of this.clients.values()) c.res.write(frame);
  }
}
