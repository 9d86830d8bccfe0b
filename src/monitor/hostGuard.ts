/**
 * The DNS-rebinding guard. A page on another site can point its own name at this machine, but its requests then
 * carry that name in the Host header: the monitor answers only Host headers that are exactly one of its own names
 * with its port. Prefix or suffix matches (`127.0.0.1.attacker.example`) are exactly what an attacker controls.
 */
import { hostname, networkInterfaces } from 'node:os';

/** The loopback names and addresses, as they appear in a Host header. */
const LOOPBACK = ['localhost', '127.0.0.1', '[::1]'];

const WILDCARDS = new Set(['0.0.0.0', '::', '[::]', '']);

export const isLoopbackBind = (host: string): boolean =>
  LOOPBACK.includes(host) || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);

/** `[v6]` for an IPv6 address, the name or IPv4 address as it is otherwise; lower case. */
function asHostHeader(host: string): string {
  const h = host.toLowerCase();
  return h.includes(':') && !h.startsWith('[') ? `[${h}]` : h;
}

/**
 * The names the monitor answers to: the loopback names, plus, when bound elsewhere, the bound name or address
 * (for a wildcard bind: this machine's host name and addresses) and the configured public name.
 */
export function allowedHostNames(bindHost: string, publicName?: string): Set<string> {
  const names = new Set(LOOPBACK);
  const bound = bindHost.toLowerCase();
  if (isLoopbackBind(bound)) names.add(asHostHeader(bound));
  else if (WILDCARDS.has(bound)) {
    names.add(hostname().toLowerCase());
    for (const list of Object.values(networkInterfaces()))
      for (const a of list ?? []) names.add(asHostHeader(a.address.replace(/%.*$/, '')));
  } else names.add(asHostHeader(bound));
  if (publicName) names.add(asHostHeader(publicName));
  return names;
}

/**
 * Whether a Host header names this monitor: one of `allowed`, with the listening port (a header without a port
 * means port 80, as browsers send it).
 */
export function hostAllowed(header: string | undefined, allowed: ReadonlySet<string>, port: number): boolean {
  if (!header) return false;
  const m = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/i.exec(header.trim());
  if (!m) return false;
  const name = m[1]!.toLowerCase();
  const headerPort = m[2] === undefined ? 80 : Number(m[2]);
  return headerPort === port && allowed.has(name);
}
