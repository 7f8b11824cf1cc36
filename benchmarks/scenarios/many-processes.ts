import type { Scenario } from '../lib/types.js';

/** 6. One hot session served by several processes (Node cluster on one port). */
export const manyProcesses: Scenario = {
  id: 'processes',
  title: '6. Many processes, hot session',
  description:
    'The hot-session run against `--processes` (default 4) processes sharing one port (Node cluster) and one store. ' +
    'With RedisLocker lost updates must be 0; with the one-process MemoryLocker (and for the unlocked peers) they show the loss.',
  path: '/rmw',
  sessions: 'one',
  cookies: 'jar',
  processes: 'many',
  countsLostUpdates: true,
  recordsLockWaits: true,
  accepts: (v) => v.shared && !v.singleOnly,
};
