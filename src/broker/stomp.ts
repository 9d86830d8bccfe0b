/**
 * One STOMP connection to the testbed's broker (ActiveMQ 5 or Artemis), through `@stomp/stompjs` over a plain TCP
 * socket (`@stomp/tcp-wrapper`): subscriptions that come back after every reconnect, publishing with receipts,
 * reconnection with exponential backoff. No framing of our own.
 */
import { Client, type IMessage, ReconnectionTimeMode, type StompHeaders, Versions } from '@stomp/stompjs';
import { TCPWrapper } from '@stomp/tcp-wrapper';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { ValidationError } from '../errors.js';

export interface BrokerAddress {
  host: string;
  port: number;
}

/** `stomp://HOST:PORT` → host and port, or a clear error. */
export function parseBrokerUrl(url: string): BrokerAddress {
  const m = /^stomp:\/\/([^:/\s]+):([0-9]{1,5})$/.exec(url);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new ValidationError(
      `broker URL ${JSON.stringify(url)} must be stomp://HOST:PORT, e.g. stomp://127.0.0.1:61613`,
      {
        field: 'broker',
      },
    );
  }
  return { host: m[1]!, port };
}

/**
 * Artemis's routing type for a destination, by the testbed's convention: `/queue/` is anycast (one consumer gets each
 * message), `/topic/` multicast (every subscription gets it). ActiveMQ 5 reads the same from the prefix itself.
 */
export function routingTypeOf(destination: string): 'ANYCAST' | 'MULTICAST' {
  if (destination.startsWith('/queue/')) return 'ANYCAST';
  if (destination.startsWith('/topic/')) return 'MULTICAST';
  throw new ValidationError(`destination ${JSON.stringify(destination)} must start with /topic/ or /queue/`, {
    field: 'destination',
  });
}

export interface StompConnectionOptions {
  url: string;
  user?: string | undefined;
  password?: string | undefined;
  /** The STOMP `client-id`: fixed, so durable subscriptions find their subscriber again. */
  clientId: string;
  reconnectDelayMs: number;
  maxReconnectDelayMs: number;
  heartbeatMs: number;
  logger: Logger;
}

export interface InboundMessage {
  destination: string;
  headers: Record<string, string>;
  body: string;
  bytes: number;
  ack(): void;
}

export interface SubscriptionSpec {
  destination: string;
  headers: StompHeaders;
  onMessage(message: InboundMessage): void;
}

const CONNECT_TIMEOUT_MS = 10_000;

/** The socket under each wrapper (the wrapper keeps it private; `getSocket` is its documented extension point). */
const socketOf = new WeakMap<TCPWrapper, Socket>();

/**
 * The library's TCP wrapper with Nagle's algorithm off: a lone small frame (an ack, a receipt-awaited publish)
 * goes at once instead of waiting for the peer's delayed ACK.
 */
class NoDelayTCPWrapper extends TCPWrapper {
  protected override getSocket(port: number, host: string): Socket {
    const socket = super.getSocket(port, host);
    socket.setNoDelay(true);
    socketOf.set(this, socket);
    return socket;
  }
}

/** The connection went away before the broker confirmed a frame. */
export class BrokerDisconnectedError extends Error {}

/**
 * The broker refused the login (an ERROR frame in reply to CONNECT that names the credentials): trying again with
 * the same login and passcode cannot help, so the connection stops instead of reconnecting forever.
 */
export class BrokerLoginRefusedError extends Error {
  constructor(
    readonly broker: string,
    readonly user: string | undefined,
    readonly brokerMessage: string,
  ) {
    super(
      `the broker ${broker} refused the login${user === undefined ? ' (no user given)' : ` of user '${user}'`}: ` +
        `${brokerMessage} (check --user/--password, SWF_BROKER_USER/SWF_BROKER_PASSWORD or [broker] user/password)`,
    );
    this.name = 'BrokerLoginRefusedError';
  }
}

/**
 * How ActiveMQ 5 and Artemis refuse a CONNECT's credentials: ActiveMQ 5's authentication plugins say `User name [u]
 * or password is invalid.`; Artemis says `Failed to connect` with the body `The login account is not valid.`.
 * Other refusals (ActiveMQ's "Client: ID already connected" while a killed gateway's connection lingers) may clear
 * up, so they are logged and retried with backoff.
 */
const LOGIN_REFUSED =
  /password is invalid|login account is not valid|unable to validate user|authenticat|credential|not authori[sz]ed/i;

/** An ERROR frame's words: its `message` header, and the first line of its body where that says more. */
function errorText(frame: { headers: Record<string, string | undefined>; body: string }): string {
  const message = (frame.headers.message ?? '').trim();
  // ActiveMQ puts a Java stack trace in the body of some errors: its first line is the exception.
  const body = (frame.body.split('\n')[0] ?? '').trim();
  return message === '' ? body : body === '' || body.includes(message) ? message : `${message}: ${body}`;
}

export const isBrokerDisconnectedError = (e: unknown): e is BrokerDisconnectedError =>
  e instanceof BrokerDisconnectedError;

export class StompConnection {
  private readonly client: Client;
  private readonly subscriptions: SubscriptionSpec[] = [];
  private readonly pending = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
  private receipt = 0;
  private attempts = 0;
  private connectedOnce = false;
  private readonly onConnectedHandlers: (() => void)[] = [];
  private readonly onRefusedHandlers: ((e: BrokerLoginRefusedError) => void)[] = [];
  private readonly address: BrokerAddress;
  private socket: Socket | undefined;
  private connectWatcher: NodeJS.Timeout | undefined;

  constructor(private readonly options: StompConnectionOptions) {
    this.address = parseBrokerUrl(options.url);
    const { logger } = options;
    const { host, port } = this.address;
    this.client = new Client({
      webSocketFactory: () => {
        const wrapper = new NoDelayTCPWrapper(host, port);
        this.socket = socketOf.get(wrapper);
        this.watchConnect();
        return wrapper;
      },
      stompVersions: new Versions(['1.2', '1.1']),
      connectHeaders: {
        host,
        'client-id': options.clientId,
        ...(options.user !== undefined ? { login: options.user } : {}),
        ...(options.password !== undefined ? { passcode: options.password } : {}),
      },
      reconnectDelay: options.reconnectDelayMs,
      maxReconnectDelay: options.maxReconnectDelayMs,
      reconnectTimeMode: ReconnectionTimeMode.EXPONENTIAL,
      heartbeatIncoming: options.heartbeatMs,
      heartbeatOutgoing: options.heartbeatMs,
      // Our own watcher (watchConnect): the library's timer outlives a deactivation before CONNECTED, and would
      // keep a refused `swf gateway` alive for its whole length.
      connectionTimeout: 0,
      // Silence the library's own chatter; our log lines say what matters.
      debug: () => {},
    });
    this.client.onConnect = () => {
      if (this.connectedOnce) logger.warn({ broker: options.url }, `reconnected to the broker ${options.url}`);
      this.connectedOnce = true;
      this.unwatchConnect();
      this.attempts = 0;
      // Connected means subscribed: frames sent after this are the subscriptions' (the broker confirmed each).
      void Promise.all(this.subscriptions.map((s) => this.doSubscribe(s))).then(() => {
        for (const h of this.onConnectedHandlers) h();
      });
    };
    this.client.onStompError = (frame) => {
      const message = errorText(frame);
      // An ERROR before CONNECTED is the broker's answer to our CONNECT: it refused the connection.
      if (!this.client.connected && LOGIN_REFUSED.test(message)) {
        const refused = new BrokerLoginRefusedError(options.url, options.user, message);
        logger.error({ broker: options.url, user: options.user }, refused.message);
        // No reconnecting: the same credentials would be refused again.
        this.unwatchConnect();
        void this.client.deactivate();
        this.failPending();
        for (const h of this.onRefusedHandlers) h(refused);
        return;
      }
      logger.error(
        { broker: options.url, headers: frame.headers },
        `broker error${this.client.connected ? '' : ' (connection refused; retrying)'}: ${message}`,
      );
    };
    this.client.onWebSocketClose = () => {
      this.unwatchConnect();
      this.failPending();
      if (this.client.active) {
        const delay = Math.min(options.reconnectDelayMs * 2 ** this.attempts, options.maxReconnectDelayMs);
        this.attempts++;
        logger.warn(
          { broker: options.url, attempt: this.attempts, delayMs: delay },
          `broker connection to ${options.url} lost or refused; reconnecting (attempt ${this.attempts}, backoff up to ${delay} ms)`,
        );
      }
    };
  }

  get connected(): boolean {
    return this.client.connected;
  }

  /** Called on every (re)connection, after the subscriptions are back. */
  onConnected(handler: () => void): void {
    this.onConnectedHandlers.push(handler);
  }

  /** Called when the broker refuses the login; the connection has stopped and will not come back. */
  onRefused(handler: (e: BrokerLoginRefusedError) => void): void {
    this.onRefusedHandlers.push(handler);
  }

  start(): void {
    this.client.activate();
  }

  /**
   * Runs `send` with the socket corked: the frames it sends (a batch of acks, of publishes) leave in one write
   * instead of one system call each.
   */
  batch(send: () => void): void {
    const socket = this.socket;
    if (!socket || socket.destroyed) {
      send();
      return;
    }
    socket.cork();
    try {
      send();
    } finally {
      socket.uncork();
    }
  }

  /** Subscribes now (if connected; resolves on the broker's receipt) and after every reconnection. */
  subscribe(spec: SubscriptionSpec): Promise<void> {
    this.subscriptions.push(spec);
    return this.client.connected ? this.doSubscribe(spec) : Promise.resolve();
  }

  /** Resolves on the broker's receipt for the SUBSCRIBE (or when the connection goes first). */
  private doSubscribe(spec: SubscriptionSpec): Promise<void> {
    const receipt = `swf-sub-${++this.receipt}`;
    const confirmed = new Promise<void>((resolve) => {
      this.pending.set(receipt, { resolve, reject: () => resolve() });
      this.client.watchForReceipt(receipt, () => {
        this.pending.delete(receipt);
        resolve();
      });
    });
    this.client.subscribe(
      spec.destination,
      (m: IMessage) => {
        const raw = m.binaryBody;
        spec.onMessage({
          destination: spec.destination,
          headers: { ...m.headers },
          body: m.body,
          bytes: raw.byteLength,
          ack: () => {
            // A frame whose ack cannot be sent (the connection just went) comes again after the reconnect,
            // and its repeat commit is a no-op.
            try {
              m.ack();
            } catch {
              /* see above */
            }
          },
        });
      },
      { ...spec.headers, receipt },
    );
    return confirmed;
  }

  /** Sends a frame; resolves when the broker's receipt arrives, rejects when the connection goes first. */
  publish(destination: string, body: string, headers: StompHeaders): Promise<void> {
    if (!this.client.connected) {
      return Promise.reject(new BrokerDisconnectedError(`not connected to the broker ${this.options.url}`));
    }
    const receipt = `swf-${++this.receipt}`;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(receipt, { resolve, reject });
      this.client.watchForReceipt(receipt, () => {
        const p = this.pending.get(receipt);
        this.pending.delete(receipt);
        p?.resolve();
      });
      try {
        this.client.publish({ destination, body, headers: { ...headers, receipt } });
      } catch (e: unknown) {
        this.pending.delete(receipt);
        reject(new BrokerDisconnectedError(e instanceof Error ? e.message : String(e)));
      }
    });
  }

  private failPending(): void {
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(new BrokerDisconnectedError('the broker connection closed before its receipt'));
  }

  /** A connection that has not been accepted (CONNECTED) within 10 s is closed, and tried again. */
  private watchConnect(): void {
    this.unwatchConnect();
    this.connectWatcher = setTimeout(() => {
      this.connectWatcher = undefined;
      if (!this.client.connected) this.client.forceDisconnect();
    }, CONNECT_TIMEOUT_MS);
  }

  private unwatchConnect(): void {
    if (this.connectWatcher) clearTimeout(this.connectWatcher);
    this.connectWatcher = undefined;
  }

  async stop(): Promise<void> {
    this.unwatchConnect();
    await this.client.deactivate();
    this.failPending();
  }
}
