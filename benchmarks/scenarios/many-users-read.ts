import type { Scenario } from '../lib/types.js';

/** 3. Many users, read-only: `get()` must cost one store read and no write. */
export const manyUsersRead: Scenario = {
  id: 'read',
  title: '3. Many users, read-only',
  description:
    'Same pool of sessions; each request only reads the counter (`get()` for us). Must make exactly one store read and no write.',
  path: '/read',
  sessions: 'users',
  cookies: 'pool',
  processes: 'one',
  countsLostUpdates: false,
  expectStoreCalls: { reads: 1, writes: 0, label: 'exactly 1 read, 0 writes' },
  accepts: (v) => !v.processesOnly,
};
