/**
 * The Stately inspector (`--inspect [URL]`): the run machine's transitions sent as inspection events
 * (`@xstate.actor`, then `@xstate.event` + `@xstate.snapshot` per transition) to a WebSocket inspector server, the
 * way `@statelyai/inspect`'s WebSocket inspector sends them.
 *
 * Folded state has no live actors, so the events go through the inspector's manual API (`actor`, `event`,
 * `snapshot` of `createInspector`), fed by the fast processing agent's `onRunTransition` observer: live in
 * `swf run`, or while `swf replay` folds the recorded events through the same agent, so a replay sends the very
 * sequence the live run sent.
 *
 * The transport is our own small adapter over `ws` rather than `createWebSocketInspector`'s: that one keeps only
 * the last 200 events sent before it connects, and after a connection error it reconnects every 5 s for ever,
 * even after `stop()`, which would keep the command from ending. Ours connects first (a clear error when nobody
 * listens), never writes to stdout, flushes what it sent and closes on `stop()`.
 *
 * Sent: every lifecycle transition (RUN_IMMINENT, START_RUN, STF_GEN, PAUSE_RUN, RESUME_RUN, END_RUN) and the
 * progress transition that finishes the run. Slice and sample progress between them is in the next snapshot's
 * context (the counters), not sent one by one, so a 100k-slice run stays viewable.
 */
import { createInspector, type StatelyInspectionEvent } from '@statelyai/inspect';
import { WebSocket } from 'ws';
import type { AnyEventObject } from 'xstate';
import type { FastProcessingOptions } from '../agents/fastProcessingAgent.js';
import { ValidationError } from '../errors.js';
import {
  type FastSnapshot,
  fastRun,
  isFinished,
  machineDefinition,
  RUN_LIFECYCLE_EVENTS,
  type RunContext,
  type RunEvent,
} from '../machines/index.js';

export const DEFAULT_INSPECTOR_URL = 'ws://localhost:8080';

/** How to open an inspector, for stderr. */
export const INSPECTOR_HOWTO =
  'Stately inspector: the run machine is sent to a WebSocket inspector server (default ws://localhost:8080).\n' +
  'To open one, in a folder where @statelyai/inspect is installed (this package has it):\n' +
  `  node --input-type=module -e "import('@statelyai/inspect/server').then((m) => m.createInspectorServer())"\n` +
  'It listens on ws://localhost:8080 and opens http://localhost:8080 in your browser, a page that embeds\n' +
  "Stately's hosted inspector (https://stately.ai/inspect): that needs internet. Keep the page open (the server\n" +
  'keeps only the last 200 events for a page that connects later), then pass --inspect ws://localhost:8080.\n';

/** What a command does with `--inspect`: nothing, the default URL (no URL given), or the URL given. */
export type InspectRequest = undefined | { url: string; explicit: boolean };

/**
 * `--inspect [URL]` for parseArgs (which has no optional values): `--inspect ws://…` and `--inspect=ws://…` take
 * the URL; `--inspect` alone (or before something that is not a ws:// URL) means the default.
 */
export function takeInspectOption(argv: readonly string[]): { argv: string[]; inspect: InspectRequest } {
  const out: string[] = [];
  let inspect: InspectRequest;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    if (a === '--inspect') {
      const next = argv[i + 1];
      if (next !== undefined && /^wss?:\/\//i.test(next)) {
        inspect = { url: next, explicit: true };
        i++;
      } else inspect = { url: DEFAULT_INSPECTOR_URL, explicit: false };
      continue;
    }
    if (a.startsWith('--inspect=')) {
      const url = a.slice('--inspect='.length);
      if (!/^wss?:\/\/./i.test(url))
        throw new ValidationError(`--inspect takes a WebSocket URL (ws://host:port), got '${url}'`, {
          field: 'inspect',
        });
      inspect = { url, explicit: true };
      continue;
    }
    out.push(a);
  }
  return { argv: out, inspect };
}

export interface RunInspector {
  readonly url: string;
  /** The observer to give the fast processing agent. */
  readonly onRunTransition: NonNullable<FastProcessingOptions['onRunTransition']>;
  /** Inspection events sent so far. */
  readonly sent: number;
  /** Sends what is pending, closes the connection. */
  stop(): Promise<void>;
}

const LIFECYCLE: ReadonlySet<string> = new Set(RUN_LIFECYCLE_EVENTS);

/** The session id of a run's run machine in the inspector. */
export const runSessionId = (runId: string): string => `run-${runId}`;

function connect(url: string, timeoutMs: number): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    let ws: WebSocket;
    try {
      ws = new WebSocket(url);
    } catch (e: unknown) {
      reject(new ValidationError(`--inspect ${url}: ${e instanceof Error ? e.message : String(e)}`));
      return;
    }
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`no Stately inspector answered at ${url} within ${timeoutMs} ms`));
    }, timeoutMs);
    ws.once('open', () => {
      clearTimeout(timer);
      resolve(ws);
    });
    ws.once('error', (e: Error) => {
      clearTimeout(timer);
      reject(new Error(`no Stately inspector at ${url} (${e.message || 'connection failed'})`));
    });
  });
}

const toJson = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? Number(x) : x));

/** Connects to the inspector at `url` (rejecting when nobody listens) and returns the run machine observer. */
export async function openRunInspector(
  url: string,
  options: { connectTimeoutMs?: number } = {},
): Promise<RunInspector> {
  const ws = await connect(url, options.connectTimeoutMs ?? 3000);
  ws.on('error', () => {
    // A connection lost mid-run: inspection stops, the command goes on (nothing to print on stdout).
  });
  let sent = 0;
  const adapter = {
    send(event: StatelyInspectionEvent): void {
      if (ws.readyState !== WebSocket.OPEN) return;
      ws.send(toJson(event));
      sent++;
    },
  };
  const inspector = createInspector(adapter, { autoStart: false });
  const definition = machineDefinition('run');
  const known = new Set<string>();
  const snapshotOf = (s: FastSnapshot<RunContext>): { status: 'active'; value: unknown; context: RunContext } => ({
    status: 'active',
    value: s.value,
    context: s.context,
  });

  const onRunTransition = (runId: string, event: RunEvent, snapshot: FastSnapshot<RunContext>): void => {
    const finishing = !LIFECYCLE.has(event.type);
    if (finishing && !isFinished(snapshot)) return;
    const sessionId = runSessionId(runId);
    if (!known.has(sessionId)) {
      known.add(sessionId);
      // createInspector reads the definition off the actor's logic, as for a live XState actor.
      const ref = {
        sessionId,
        id: 'run',
        logic: { config: definition },
        send: () => {},
        getSnapshot: () => undefined,
      };
      inspector.actor(ref, snapshotOf(fastRun.initial()));
    }
    if (finishing) {
      // Sent once: the progress transition that makes the run finished.
      if (known.has(`${sessionId}:finished`)) return;
      known.add(`${sessionId}:finished`);
    }
    const e = event as unknown as AnyEventObject;
    inspector.event(sessionId, e);
    inspector.snapshot(sessionId, snapshotOf(snapshot), { event: e });
  };

  return {
    url,
    onRunTransition,
    get sent() {
      return sent;
    },
    async stop() {
      inspector.stop();
      if (ws.readyState === WebSocket.OPEN) {
        for (let i = 0; i < 500 && ws.bufferedAmount > 0; i++) await new Promise((r) => setTimeout(r, 10));
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            ws.terminate();
            resolve();
          }, 2000);
          ws.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
          ws.close(1000, 'done');
        });
      } else ws.terminate();
    },
  };
}

/**
 * Opens the inspector a command asked for. Without a URL: prints how to open one, and goes on without inspecting
 * when nobody listens at the default URL. With one: an inspector that does not answer is an error.
 */
export async function inspectorFor(
  request: InspectRequest,
  stderr: NodeJS.WritableStream,
): Promise<RunInspector | undefined> {
  if (!request) return undefined;
  if (!request.explicit) stderr.write(INSPECTOR_HOWTO);
  try {
    const inspector = await openRunInspector(request.url);
    stderr.write(`Sending the run machine to the Stately inspector at ${request.url}\n`);
    return inspector;
  } catch (e: unknown) {
    if (request.explicit) throw e;
    stderr.write(`${e instanceof Error ? e.message : String(e)}: going on without inspecting\n`);
    return undefined;
  }
}
