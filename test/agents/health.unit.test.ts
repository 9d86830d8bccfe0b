import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { AgentRoster, heartbeatSecondsFrom, STALE_AFTER_MS } from '../../src/agents/health.js';
import type { StoredEvent } from '../../src/eventStore/eventStore.js';

let position = 0n;
const beat = (name: string, state: string, recordedAt: number, over: Record<string, unknown> = {}): StoredEvent => ({
  id: `beat-${position}`,
  type: 'agent_heartbeat',
  streamName: `agent-${name}`,
  revision: 0n,
  position: position++,
  metadata: {},
  recordedAt: new Date(recordedAt),
  data: {
    msg_type: 'agent_heartbeat',
    instance_name: name,
    agent_type: 'DATA',
    operational_state: state,
    namespace: 'ns',
    // another host: its process cannot be checked from here, only its heartbeats
    pid: 1234,
    hostname: 'elsewhere',
    // a virtual-time run's stamp, twenty minutes ahead: never read for liveness
    created_at: new Date(recordedAt + 20 * 60_000).toISOString(),
    ...over,
  },
});

describe('agent liveness', () => {
  const now = Date.parse('2026-12-07T12:00:00Z');

  it('is judged by when the store recorded the last heartbeat (wall clock), not by its own time', () => {
    const r = new AgentRoster('here');
    r.observe(beat('data-agent-a', 'READY', now - STALE_AFTER_MS - 1000));
    r.observe(beat('data-agent-b', 'READY', now - 10_000));
    expect(r.live('ns', now).map((a) => a.instance_name)).toEqual(['data-agent-b']);
  });

  it('an agent that said it exited is not live; one of another namespace does not count', () => {
    const r = new AgentRoster('here');
    r.observe(beat('data-agent-a', 'READY', now - 2000));
    r.observe(beat('data-agent-a', 'EXITED', now - 1000));
    r.observe(beat('data-agent-c', 'READY', now - 1000, { namespace: 'other' }));
    expect(r.live('ns', now)).toEqual([]);
    expect(r.live('other', now).map((a) => a.instance_name)).toEqual(['data-agent-c']);
  });

  it('an agent on this host whose process is gone is not live, however recent its heartbeat', () => {
    const r = new AgentRoster(hostname());
    r.observe(beat('data-agent-dead', 'READY', now, { hostname: hostname(), pid: 2 ** 22 + 12345 }));
    r.observe(beat('data-agent-me', 'READY', now, { hostname: hostname(), pid: process.pid }));
    expect(r.live('ns', now).map((a) => a.instance_name)).toEqual(['data-agent-me']);
  });

  it('an older heartbeat read after a newer one does not replace it', () => {
    const r = new AgentRoster('here');
    r.observe(beat('data-agent-a', 'EXITED', now - 1000));
    r.observe(beat('data-agent-a', 'READY', now - 5000));
    expect(r.live('ns', now)).toEqual([]);
  });

  it('takes its period from SWF_HEARTBEAT_SECONDS, refusing a bad one by name', () => {
    expect(heartbeatSecondsFrom({})).toBe(30);
    expect(heartbeatSecondsFrom({ SWF_HEARTBEAT_SECONDS: '0.5' })).toBe(0.5);
    expect(() => heartbeatSecondsFrom({ SWF_HEARTBEAT_SECONDS: '0' })).toThrow(/SWF_HEARTBEAT_SECONDS/);
    expect(() => heartbeatSecondsFrom({ SWF_HEARTBEAT_SECONDS: 'often' })).toThrow(/got 'often'/);
  });
});
