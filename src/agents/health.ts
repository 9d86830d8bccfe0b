/**
 * Agent health: heartbeats on a wall-clock period, and liveness judged from them against the wall clock.
 *
 * A heartbeat's `created_at` is the workflow clock's time; a virtual-time run stamps its events up to twenty minutes
 * ahead of the wall clock (docs/run.md "Virtual time and real time"), so liveness never reads it. It reads when the
 * store recorded the heartbeat (`recordedAt`, the store's wall clock), the state it names (`EXITED` is a clean exit)
 * and, on this host, whether the process it names still runs.
 */
import { readFileSync } from 'node:fs';
import { ValidationError } from '../errors.js';
import type { EventStore, StoredEvent, Subscription } from '../eventStore/eventStore.js';
import { STREAM_PREFIXES } from '../messages/index.js';

/** Default heartbeat period (wall seconds) of `swf run`'s and `swf agent`'s agents; `SWF_HEARTBEAT_SECONDS` changes it. */
export const DEFAULT_HEARTBEAT_SECONDS = 30;

/** An agent with no heartbeat for this long (wall clock) is stale: taken for gone. The monitor's window too. */
export const STALE_AFTER_MS = 3 * 60_000;

/** The heartbeat period from the environment (`SWF_HEARTBEAT_SECONDS`), else the default. */
export function heartbeatSecondsFrom(env: Readonly<Record<string, string | undefined>>): number {
  const raw = env.SWF_HEARTBEAT_SECONDS;
  if (raw === undefined || raw.trim() === '') return DEFAULT_HEARTBEAT_SECONDS;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || n > 3600)
    throw new ValidationError(
      `SWF_HEARTBEAT_SECONDS must be a number of seconds above 0 and at most 3600, got '${raw}'`,
      {
        field: 'SWF_HEARTBEAT_SECONDS',
      },
    );
  return n;
}

/** Whether process `pid` on `host` is alive, as far as this host can tell (another host's: unknown). */
export function processState(pid: unknown, host: unknown, ownHost: string): 'alive' | 'gone' | 'unknown' {
  if (typeof pid !== 'number' || pid <= 0 || host !== ownHost) return 'unknown';
  if (pid === process.pid) return 'alive';
  try {
    process.kill(pid, 0);
    // A killed process its parent has not reaped yet (a zombie) still answers kill(pid, 0), but is gone.
    try {
      return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')) ? 'gone' : 'alive';
    } catch {
      return 'alive';
    }
  } catch (e: unknown) {
    // EPERM: it exists, under another user.
    return (e as { code?: unknown }).code === 'EPERM' ? 'alive' : 'gone';
  }
}

export interface AgentSighting {
  instance_name: string;
  agent_type: string;
  namespace: string | undefined;
  operational_state: string;
  pid: unknown;
  hostname: unknown;
  /** When the store recorded its last heartbeat (wall clock, ms). */
  seenAt: number;
}

/** The agents' last heartbeats, folded from `agent_heartbeat` events; liveness against the wall clock. */
export class AgentRoster {
  private readonly agents = new Map<string, AgentSighting>();

  constructor(
    private readonly ownHost: string,
    private readonly staleAfterMs = STALE_AFTER_MS,
  ) {}

  /** Feeds one stored event (anything but a heartbeat is passed over). */
  observe(e: StoredEvent): void {
    if (e.type !== 'agent_heartbeat') return;
    const d = e.data as Record<string, unknown> | null;
    if (!d || typeof d.instance_name !== 'string' || typeof d.agent_type !== 'string') return;
    const seenAt = e.recordedAt.getTime();
    const before = this.agents.get(d.instance_name);
    if (before && before.seenAt > seenAt) return;
    this.agents.set(d.instance_name, {
      instance_name: d.instance_name,
      agent_type: d.agent_type,
      namespace: typeof d.namespace === 'string' ? d.namespace : undefined,
      operational_state: typeof d.operational_state === 'string' ? d.operational_state : 'READY',
      pid: d.pid,
      hostname: d.hostname,
      seenAt,
    });
  }

  /** Whether an agent counts as running now: not exited, not stale by the wall clock, its process not gone. */
  isLive(a: AgentSighting, nowMs = Date.now()): boolean {
    if (a.operational_state === 'EXITED') return false;
    if (nowMs - a.seenAt > this.staleAfterMs) return false;
    return processState(a.pid, a.hostname, this.ownHost) !== 'gone';
  }

  /** The live agents of `namespace` (agents without a namespace serve every one, as in the testbed). */
  live(namespace: string, nowMs = Date.now()): AgentSighting[] {
    return [...this.agents.values()].filter(
      (a) => (a.namespace === undefined || a.namespace === namespace) && this.isLive(a, nowMs),
    );
  }
}

/**
 * Follows the agents' heartbeats in a store: those recorded within the staleness window (read backwards from the
 * log's end, so a long log is not scanned), then the new ones as they come.
 */
export function watchAgents(
  store: EventStore,
  roster: AgentRoster,
  staleAfterMs = STALE_AFTER_MS,
): { ready: Promise<void>; stop(): Promise<void> } {
  const filter = { streamPrefix: [STREAM_PREFIXES.agent], eventTypePrefix: ['agent_heartbeat'] };
  let subscription: Subscription | undefined;
  let stopped = false;
  const ready = (async () => {
    const head = await store.headPosition();
    const since = Date.now() - staleAfterMs;
    const recent: StoredEvent[] = [];
    if (head !== undefined) {
      for await (const e of store.readAll({ direction: 'backwards', filter })) {
        if (e.recordedAt.getTime() < since) break;
        recent.push(e);
      }
    }
    for (const e of recent.reverse()) roster.observe(e);
    if (stopped) return;
    subscription = store.subscribeToAll({ from: head ?? 'start', filter });
    void (async () => {
      for await (const e of subscription) roster.observe(e);
    })().catch(() => {});
  })();
  return {
    ready,
    async stop() {
      stopped = true;
      await ready.catch(() => {});
      await subscription?.unsubscribe();
    },
  };
}
