/**
 * `swf gateway` on a broker that asks for a login (ActiveMQ's `simpleAuthenticationPlugin`): with the right user and
 * password it records frames; with a wrong one it stops at once with an error naming the broker and its refusal
 * (`swf gateway` exits 1) instead of reconnecting forever. The broker URL and credentials come from the flags, the
 * environment or `[broker]`, and the password is printed nowhere.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningGateway, startGateway } from '../../src/broker/gateway.js';
import { BrokerLoginRefusedError, type StompConnection } from '../../src/broker/stomp.js';
import type { EventStore } from '../../src/eventStore/eventStore.js';
import { openEventStore } from '../../src/eventStore/open.js';
import { type ActiveMq, activeMqSkipReason, startActiveMq } from '../helpers/activemq.js';
import { type Child, startNode } from '../helpers/spawn.js';
import { publishedFrames } from './corpus.js';
import { brokerConfig, countFrames, publishCorpus, stompClient, waitFor, waitForFrames } from './helpers.js';

const skipReason = activeMqSkipReason();
if (skipReason) console.warn(`[swf-es] skipped the broker login tests: ${skipReason}`);

const CLI = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));
const USER = 'swf-gw';
const PASSWORD = 'right-Pa55word-never-printed';
const WRONG = 'wrong-Pa55word-never-printed';

/** A logger at its most talkative whose lines the test reads. */
function capturedLogger(): { logger: pino.Logger; text: () => string } {
  let text = '';
  const logger = pino({ level: 'trace' }, { write: (line: string) => (text += line) });
  return { logger, text: () => text };
}

/** The child's exit code, or a failure (and the child killed) when it has not exited by the deadline. */
async function exitCode(child: Child, timeoutMs = 30_000): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      child.proc.kill('SIGKILL');
      reject(new Error(`swf gateway still running after ${timeoutMs} ms; stderr: ${child.stderr()}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([child.exited, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

describe.skipIf(skipReason !== undefined)('swf gateway on a broker that asks for a login', () => {
  let broker: ActiveMq;
  let dir: string;
  let publisher: StompConnection;
  const children: Child[] = [];

  beforeAll(async () => {
    broker = await startActiveMq({ users: [{ username: USER, password: PASSWORD }] });
    dir = mkdtempSync(join(tmpdir(), 'swf-gateway-login-'));
    publisher = await stompClient(broker.url, undefined, { user: USER, password: PASSWORD });
  }, 120_000);

  afterAll(async () => {
    for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
    for (const s of stores) await s.close();
    await publisher?.stop();
    await broker?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  const stores: EventStore[] = [];
  /** A gateway in this process on a store of its own (closed after the tests). */
  const gatewayWith = async (
    clientId: string,
    login: { user?: string; password?: string },
    logger: pino.Logger,
  ): Promise<{ url: string; store: EventStore; running: RunningGateway }> => {
    const url = `sqlite:${join(dir, `${clientId}.db`)}`;
    const store = await openEventStore(url, { durable: true });
    stores.push(store);
    const running = startGateway({
      store,
      broker: brokerConfig(broker.url, { client_id: clientId, ...login }),
      namespace: 'torre1',
      logger,
      leaseFactor: 3,
      outbound: false,
    });
    return { url, store, running };
  };

  const swfGateway = (args: string[], env: Record<string, string> = {}): Child => {
    const child = startNode(CLI, ['gateway', '--namespace', 'torre1', '--record-only', ...args], {
      SWF_LOG_LEVEL: 'trace',
      ...env,
    });
    children.push(child);
    return child;
  };

  it('records frames with the right user and password', async () => {
    const log = capturedLogger();
    const { store, running } = await gatewayWith('gw-login-right', { user: USER, password: PASSWORD }, log.logger);
    await running.ready;
    await publishCorpus(publisher, publishedFrames().slice(0, 20));
    await waitForFrames(store, 20);
    await running.stop();
    expect(log.text()).toContain(`connected to ${broker.url}`);
    expect(log.text()).not.toContain(PASSWORD);
  }, 60_000);

  it('stops with an error naming the broker and its refusal when the password is wrong, and does not retry', async () => {
    const log = capturedLogger();
    const { running } = await gatewayWith('gw-login-wrong', { user: USER, password: WRONG }, log.logger);
    const refusal = `the broker ${broker.url} refused the login of user '${USER}': User name [${USER}] or password is invalid.`;
    await expect(running.ready).rejects.toThrow(BrokerLoginRefusedError);
    await expect(running.done).rejects.toThrow(refusal);
    expect(log.text()).toContain(refusal);
    // One refusal, no reconnection attempts after it, and neither password in any log line.
    expect(log.text()).not.toMatch(/reconnecting/);
    expect(log.text()).not.toContain(WRONG);
    expect(log.text()).not.toContain(PASSWORD);

    // No user at all: refused the same way, saying none was given.
    const anonymous = await gatewayWith('gw-login-none', {}, capturedLogger().logger);
    await expect(anonymous.running.ready).rejects.toThrow(BrokerLoginRefusedError);
    await expect(anonymous.running.done).rejects.toThrow(
      `the broker ${broker.url} refused the login (no user given): User name [null] or password is invalid.`,
    );
  }, 60_000);

  it('swf gateway with a wrong password exits 1 with the refusal on stderr, and prints no password', async () => {
    const url = `sqlite:${join(dir, 'cli-wrong.db')}`;
    const child = swfGateway([
      '--broker',
      broker.url,
      '--user',
      USER,
      '--password',
      WRONG,
      '--store',
      url,
      '--set',
      'broker.client_id="gw-cli-wrong"',
    ]);
    expect(await exitCode(child)).toBe(1);
    expect(child.stderr()).toContain(
      `swf gateway: the broker ${broker.url} refused the login of user '${USER}': User name [${USER}] or password is invalid.`,
    );
    expect(child.stderr()).not.toMatch(/reconnecting|swf gateway: connected/);
    expect(child.stderr()).not.toContain(WRONG);
  }, 60_000);

  it('takes the broker URL, user and password from SWF_BROKER_URL, SWF_BROKER_USER and SWF_BROKER_PASSWORD', async () => {
    const url = `sqlite:${join(dir, 'cli-env.db')}`;
    const child = swfGateway(['--store', url, '--set', 'broker.client_id="gw-cli-env"'], {
      SWF_BROKER_URL: broker.url,
      SWF_BROKER_USER: USER,
      SWF_BROKER_PASSWORD: PASSWORD,
    });
    await waitFor(
      () => `swf gateway to connect; stderr: ${child.stderr()}`,
      async () =>
        child.stderr().includes('swf gateway: connected') || child.proc.exitCode !== null ? true : undefined,
    );
    expect(child.stderr()).toContain(`swf gateway: ${broker.url} <-> `);
    await publishCorpus(publisher, publishedFrames().slice(0, 5));
    await waitFor(
      async () => `5 recorded frames (have ${await countFrames(url)}); stderr: ${child.stderr()}`,
      async () => ((await countFrames(url)) >= 5 ? true : undefined),
    );
    child.proc.kill('SIGTERM');
    expect(await exitCode(child)).toBe(0);
    expect(child.stderr()).toMatch(/swf gateway: stopped; recorded 5 frames/);
    expect(child.stderr()).not.toContain(PASSWORD);
  }, 60_000);

  it('lets --password beat SWF_BROKER_PASSWORD, and SWF_BROKER_PASSWORD beat [broker] password', async () => {
    // The flag's wrong password wins over the environment's right one.
    const flagWins = swfGateway(
      ['--password', WRONG, '--store', `sqlite:${join(dir, 'cli-flag.db')}`, '--set', 'broker.client_id="gw-flag"'],
      { SWF_BROKER_URL: broker.url, SWF_BROKER_USER: USER, SWF_BROKER_PASSWORD: PASSWORD },
    );
    expect(await exitCode(flagWins)).toBe(1);
    expect(flagWins.stderr()).toContain(`refused the login of user '${USER}'`);

    // The environment's right password wins over a wrong one in the testbed file's [broker] section.
    const testbed = join(dir, 'testbed-with-broker.toml');
    writeFileSync(
      testbed,
      `[testbed]\nnamespace = "torre1"\n\n[broker]\nurl = "${broker.url}"\nuser = "${USER}"\npassword = "${WRONG}"\n`,
    );
    const url = `sqlite:${join(dir, 'cli-config.db')}`;
    const envWins = swfGateway(['--testbed', testbed, '--store', url, '--set', 'broker.client_id="gw-config"'], {
      SWF_BROKER_PASSWORD: PASSWORD,
    });
    await waitFor(
      () => `swf gateway to connect; stderr: ${envWins.stderr()}`,
      async () =>
        envWins.stderr().includes('swf gateway: connected') || envWins.proc.exitCode !== null ? true : undefined,
    );
    envWins.proc.kill('SIGTERM');
    expect(await exitCode(envWins)).toBe(0);
    expect(envWins.stderr()).toContain('swf gateway: connected');

    // The file's wrong password alone is refused; the password is not echoed back.
    const fileOnly = swfGateway(['--testbed', testbed, '--store', url, '--set', 'broker.client_id="gw-config"']);
    expect(await exitCode(fileOnly)).toBe(1);
    expect(fileOnly.stderr()).toContain(`swf gateway: the broker ${broker.url} refused the login of user '${USER}'`);
    for (const c of [flagWins, envWins, fileOnly]) {
      expect(c.stderr()).not.toContain(WRONG);
      expect(c.stderr()).not.toContain(PASSWORD);
    }
  }, 90_000);

  it('refuses a SWF_BROKER_URL that is not stomp://HOST:PORT, naming the variable', async () => {
    const child = swfGateway(['--store', `sqlite:${join(dir, 'cli-bad-url.db')}`], {
      SWF_BROKER_URL: 'tcp://127.0.0.1:61613',
    });
    expect(await exitCode(child)).toBe(2);
    expect(child.stderr()).toContain('SWF_BROKER_URL: broker URL "tcp://127.0.0.1:61613" must be stomp://HOST:PORT');
  }, 30_000);
});
