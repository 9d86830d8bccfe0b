/** The PostgreSQL store shared by several processes, each test on a scratch database of its own. */
import { afterAll } from 'vitest';
import { postgresSkipReason, type ScratchDatabase, scratchDatabase } from '../helpers/postgres.js';
import { describeMultiProcess } from './multiprocess.shared.js';

const made: ScratchDatabase[] = [];
afterAll(async () => {
  for (const db of made) await db.drop();
});

describeMultiProcess(
  'PostgreSQL',
  async () => {
    const db = await scratchDatabase('mp');
    made.push(db);
    return db.url;
  },
  postgresSkipReason,
);
