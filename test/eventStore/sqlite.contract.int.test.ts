import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEventStore } from '../../src/index.js';
import { describeEventStore, describeGroupContract } from './eventStore.contract.js';

const file = join(mkdtempSync(join(tmpdir(), 'swf-contract-')), 'swf.db');
describeEventStore('sqlite', () => openEventStore(`sqlite:${file}`), {
  reopen: () => openEventStore(`sqlite:${file}`),
});
describeGroupContract('sqlite', () =>
  openEventStore(`sqlite:${join(tmpdir(), `swf-groups-${process.pid}-${Date.now()}.db`)}`),
);
