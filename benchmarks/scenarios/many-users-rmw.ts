import type { Scenario } from '../lib/types.js';

/** 2. Many users, read-modify-write: the everyday write path, no contention. */
export const manyUsersRmw: Scenario = {
  id: 'rmw',
  title: '2. Many users, read-modify-write',
  description:
    'Sessions pre-created (`--users`, default 1,000); each request picks one at random and increments its counter (under the lock, for us).',
  path: '/rmw',
  sessions: 'users',
  cookies: 'pool',
  processes: 'one',
  countsLostUpdates: false,
  accepts: (v) => !v.processesOnly,
};
