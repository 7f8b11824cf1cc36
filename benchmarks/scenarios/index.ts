/**
 * The scenarios of `npm run bench`, in report order. Each asks one question of
 * every variant that can answer it; the routes are the same for all (see
 * `lib/routes.ts`). Standalone one-off studies (Redis fast path, faults, memory
 * soak) live in `../probes/`, outside `npm run bench`.
 */
import type { Scenario } from '../lib/types.js';
import { fresh } from './fresh.js';
import { manyUsersRmw } from './many-users-rmw.js';
import { manyUsersRead } from './many-users-read.js';
import { hotSession } from './hot-session.js';
import { untouched } from './untouched.js';
import { manyProcesses } from './many-processes.js';

export const SCENARIOS: readonly Scenario[] = [fresh, manyUsersRmw, manyUsersRead, hotSession, untouched, manyProcesses];
