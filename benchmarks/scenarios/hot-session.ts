import type { Scenario } from '../lib/types.js';

/** 4. One hot session: every connection increments the same counter. */
export const hotSession: Scenario = {
  id: 'hot',
  title: '4. Hot session',
  description:
    'All connections share one session (one cookie jar, updated from every `Set-Cookie`, like tabs of one browser) and increment its counter. ' +
    'Lost updates = read-modify-write responses committed with a 2xx minus the increase of the counter read back at the end: must be 0 for us.',
  path: '/rmw',
  sessions: 'one',
  cookies: 'jar',
  processes: 'one',
  countsLostUpdates: true,
  recordsLockWaits: true,
  accepts: (v) => !v.processesOnly,
};
