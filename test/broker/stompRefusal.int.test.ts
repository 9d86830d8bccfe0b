/**
 * How the STOMP connection meets a broker's refusal of its CONNECT, against a small TCP server that answers with
 * the ERROR frames the brokers send: Artemis's refused login (it cannot run here; the frame is the one its STOMP
 * 1.1/1.2 handler writes) stops the connection at once; a refusal that is not about the credentials (ActiveMQ's
 * client id still in use) is logged and tried again. login.e2e.test.ts meets ActiveMQ 5's own refusal.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { BrokerLoginRefusedError, StompConnection } from '../../src/broker/stomp.js';
import { waitFor } from './helpers.js';

interface FakeBroker {
  url: string;
  /** The CONNECT frames received, in order. */
  connects: string[];
  /** Connections not yet closed at both ends. */
  open(): number;
  close(): Promise<void>;
}

/** A server that answers every CONNECT with `reply` and closes the socket, as both brokers do after an ERROR. */
async function fakeBroker(reply: string): Promise<FakeBroker> {
  const connects: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buffer = '';
    socket.on('data', (d: Buffer) => {
      buffer += d.toString('utf8');
      const end = buffer.indexOf('\0');
      if (end < 0) return;
      connects.push(buffer.slice(0, end));
      socket.end(reply);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('no address');
  return {
    url: `stomp://127.0.0.1:${address.port}`,
    connects,
    open: () => sockets.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function logged(): { logger: pino.Logger; text: () => string } {
  let text = '';
  return { logger: pino({ level: 'trace' }, { write: (l: string) => (text += l) }), text: () => text };
}

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

function connect(url: string, logger: pino.Logger, login: { user?: string; password?: string }): StompConnection {
  const c = new StompConnection({
    url,
    clientId: 'swf-refusal-test',
    user: login.user,
    password: login.password,
    reconnectDelayMs: 20,
    maxReconnectDelayMs: 50,
    heartbeatMs: 0,
    logger,
  });
  cleanup.push(() => c.stop());
  return c;
}

describe('a broker that refuses the CONNECT', () => {
  it("stops at Artemis's refused login, naming the broker, the user and Artemis's words, without retrying", async () => {
    // StompFrameHandlerV11.onConnect when validateUser fails.
    const broker = await fakeBroker(
      'ERROR\ncontent-type:text/plain\nmessage:Failed to connect\n\nThe login account is not valid.\0',
    );
    cleanup.push(() => broker.close());
    const log = logged();
    const c = connect(broker.url, log.logger, { user: 'swf', password: 'not-this-one' });
    const refused = new Promise<BrokerLoginRefusedError>((resolve) => c.onRefused(resolve));
    c.start();
    const e = await refused;
    expect(e).toBeInstanceOf(BrokerLoginRefusedError);
    expect(e.message).toBe(
      `the broker ${broker.url} refused the login of user 'swf': Failed to connect: The login account is not valid. ` +
        '(check --user/--password, SWF_BROKER_USER/SWF_BROKER_PASSWORD or [broker] user/password)',
    );
    // What we sent: the login and passcode (the broker needs them), and nothing else logged them.
    expect(broker.connects[0]).toMatch(/\nlogin:swf\n/);
    expect(broker.connects[0]).toMatch(/\npasscode:not-this-one\n/);
    expect(log.text()).not.toContain('not-this-one');
    // Stopped: once the refused socket has closed at both ends, no reconnection was scheduled or tried.
    await waitFor('the refused socket to close', async () => (broker.open() === 0 ? true : undefined), 10_000);
    expect(log.text()).not.toMatch(/reconnecting/);
    expect(broker.connects).toHaveLength(1);
  });

  it('tries again after a refusal that is not about the credentials (a client id still connected), saying so', async () => {
    const broker = await fakeBroker(
      'ERROR\ncontent-type:text/plain\nmessage:Broker: swf - Client: swf-refusal-test already connected from tcp://127.0.0.1:4242\n\n' +
        'javax.jms.InvalidClientIDException: Broker: swf - Client: swf-refusal-test already connected from tcp://127.0.0.1:4242\n' +
        '\tat org.apache.activemq.broker.region.RegionBroker.addConnection(RegionBroker.java:265)\n\0',
    );
    cleanup.push(() => broker.close());
    const log = logged();
    const c = connect(broker.url, log.logger, {});
    let refused = false;
    c.onRefused(() => (refused = true));
    c.start();
    await waitFor(
      () => `three CONNECT attempts (have ${broker.connects.length})`,
      async () => (broker.connects.length >= 3 ? true : undefined),
      30_000,
    );
    expect(refused).toBe(false);
    expect(log.text()).toContain(
      'broker error (connection refused; retrying): Broker: swf - Client: swf-refusal-test already connected',
    );
    // The stack trace stays out of the log line.
    expect(log.text()).not.toContain('RegionBroker.addConnection');
  });
});
