/**
 * A real ActiveMQ 5 broker for the tests and bench:gateway: Debian's `activemq` package (OpenJDK 17), run without systemd from a
 * base folder of our own with only a STOMP connector on 127.0.0.1 and a free port, persistent (KahaDB), so
 * durable subscriptions and persistent frames survive a broker restart. `.ci/run` installs the package.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const HOME = '/usr/share/activemq';
const JAR = join(HOME, 'bin', 'activemq.jar');

function javaFound(): boolean {
  try {
    execFileSync('java', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** What is missing to run a broker here (the package, or java), or undefined. */
export function activeMqMissing(): string | undefined {
  return !existsSync(JAR)
    ? `the Debian package 'activemq' is not installed (${JAR} is missing)`
    : !javaFound()
      ? 'no java on PATH (ActiveMQ needs OpenJDK 17)'
      : undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface ActiveMqOptions {
  /**
   * KahaDB's `journalDiskSyncStrategy`: `always` (the default, ActiveMQ's own: an fsync per persistent frame it
   * stores) or `periodic` (once a second). A durable topic subscription makes the broker store every persistent
   * frame, so with `always` the broker itself is bound by the disk's fsync rate (bench:gateway measures both).
   */
  journalSync?: 'always' | 'periodic';
  /**
   * Users the broker accepts (ActiveMQ's `simpleAuthenticationPlugin`); with any, a connection without a valid
   * login and passcode is refused. Without, the broker asks for no credentials.
   */
  users?: readonly ActiveMqUser[];
}

export interface ActiveMqUser {
  username: string;
  password: string;
  /** Comma-separated groups (ActiveMQ's `groups` attribute; default `users`). */
  groups?: string;
}

const xmlAttr = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The `<plugins>` element of a broker that authenticates its users (none when it does not). */
function authentication(users: readonly ActiveMqUser[] | undefined): string {
  if (!users || users.length === 0) return '';
  const list = users
    .map(
      (u) =>
        `        <authenticationUser username="${xmlAttr(u.username)}" password="${xmlAttr(u.password)}" groups="${xmlAttr(u.groups ?? 'users')}"/>`,
    )
    .join('\n');
  return `
    <plugins>
      <simpleAuthenticationPlugin anonymousAccessAllowed="false">
        <users>
${list}
        </users>
      </simpleAuthenticationPlugin>
    </plugins>`;
}

function config(dir: string, port: number, options: ActiveMqOptions): string {
  return `<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans-2.0.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="swf-es-test" useJmx="false"
          dataDirectory="${dir}/data" schedulerSupport="false" advisorySupport="false">
    <persistenceAdapter><kahaDB directory="${dir}/data/kahadb" journalDiskSyncStrategy="${options.journalSync ?? 'always'}"/></persistenceAdapter>${authentication(options.users)}
    <systemUsage><systemUsage>
      <memoryUsage><memoryUsage limit="128 mb"/></memoryUsage>
      <storeUsage><storeUsage limit="1 gb"/></storeUsage>
      <tempUsage><tempUsage limit="256 mb"/></tempUsage>
    </systemUsage></systemUsage>
    <transportConnectors>
      <transportConnector name="stomp" uri="stomp://127.0.0.1:${port}?wireFormat.maxFrameSize=104857600"/>
    </transportConnectors>
  </broker>
</beans>
`;
}

export interface ActiveMq {
  url: string;
  port: number;
  dir: string;
  /** Stops the broker process (its data stays, for `start` again). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it and removes its folder. */
  destroy(): Promise<void>;
  log(): string;
}

/** Starts a broker in a fresh folder and waits until its STOMP port accepts connections. */
export async function startActiveMq(options: ActiveMqOptions = {}): Promise<ActiveMq> {
  const dir = mkdtempSync(join(tmpdir(), 'swf-activemq-'));
  mkdirSync(join(dir, 'conf'));
  mkdirSync(join(dir, 'data'));
  const port = await freePort();
  writeFileSync(join(dir, 'conf', 'activemq.xml'), config(dir, port, options));
  let proc: ChildProcess | undefined;
  let output = '';

  const start = async (): Promise<void> => {
    output = '';
    const child = spawn(
      'java',
      [
        '-Xms64m',
        '-Xmx256m',
        '-XX:+UseSerialGC',
        `-Dactivemq.home=${HOME}`,
        `-Dactivemq.base=${dir}`,
        `-Dactivemq.conf=${dir}/conf`,
        `-Dactivemq.data=${dir}/data`,
        '-jar',
        JAR,
        'start',
        `xbean:file:${dir}/conf/activemq.xml`,
      ],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    proc = child;
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const deadline = Date.now() + 90_000;
    while (!(await canConnect(port))) {
      if (child.exitCode !== null) throw new Error(`ActiveMQ exited with ${child.exitCode}: ${output.slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`ActiveMQ did not open port ${port} in 90 s: ${output.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  const stop = async (): Promise<void> => {
    const child = proc;
    proc = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
    // The port is free again once the JVM is gone; wait for it so a restart can bind it.
    const deadline = Date.now() + 20_000;
    while ((await canConnect(port)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  };

  await start();
  return {
    url: `stomp://127.0.0.1:${port}`,
    port,
    dir,
    stop,
    start,
    async destroy() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
    log: () => output,
  };
}
