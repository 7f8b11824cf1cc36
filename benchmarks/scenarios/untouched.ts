import type { Scenario } from '../lib/types.js';

/** 5. A route that never uses the session: the middleware must cost (almost) nothing. */
export const untouched: Scenario = {
  id: 'untouched',
  title: '5. Untouched route',
  description:
    'Requests carry a valid session cookie but the route never uses the session. Must make zero store calls; compare with bare Koa.',
  path: '/untouched',
  sessions: 'one',
  cookies: 'pool',
  processes: 'one',
  countsLostUpdates: false,
  expectStoreCalls: { reads: 0, writes: 0, label: 'zero store calls' },
  accepts: (v) => !v.processesOnly,
};
