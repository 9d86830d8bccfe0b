/** The SQLite store shared by several processes on one file. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeMultiProcess } from './multiprocess.shared.js';

describeMultiProcess('SQLite', async () => `sqlite:${join(mkdtempSync(join(tmpdir(), 'swf-mp-')), 'swf.db')}`);
