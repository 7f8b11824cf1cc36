import type { Scenario } from '../lib/types.js';

/** 1. Every request is a new visitor: create a session, save it, send its cookie. */
export const fresh: Scenario = {
  id: 'fresh',
  title: '1. Fresh sessions',
  description: 'No cookie; each request creates a session `{ count: 1 }`, saves it and sets the cookie.',
  path: '/fresh',
  sessions: 'none',
  cookies: 'none',
  processes: 'one',
  countsLostUpdates: false,
  accepts: (v) => !v.processesOnly,
};
