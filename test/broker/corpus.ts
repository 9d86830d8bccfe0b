/** The captured real testbed traffic (test/fixtures/testbed-wire, a copy of the shared reference corpus). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface CorpusFrame {
  seq: number;
  captured_at: number;
  capture_run: string;
  destination: string;
  capture_via: 'topic' | 'mirrored-queue';
  broker_copy: boolean;
  headers: Record<string, string>;
  body: unknown;
  note?: string;
}

export const CORPUS_PATH = fileURLToPath(new URL('../fixtures/testbed-wire/stomp.ndjson', import.meta.url));

export function readCorpus(): CorpusFrame[] {
  return readFileSync(CORPUS_PATH, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as CorpusFrame);
}

/** The frames as their senders published them (not the broker's forwarded copies), in order. */
export const publishedFrames = (): CorpusFrame[] => readCorpus().filter((f) => !f.broker_copy);

/** The headers a publisher set (the broker adds the rest on delivery). */
export function publisherHeaders(f: CorpusFrame): Record<string, string> {
  // content-length is the frame's own (the injected frame's copy of it no longer fits its body).
  const broker = new Set([
    'expires',
    'destination',
    'subscription',
    'priority',
    'message-id',
    'timestamp',
    'ack',
    'content-length',
  ]);
  return Object.fromEntries(Object.entries(f.headers).filter(([k]) => !broker.has(k)));
}
