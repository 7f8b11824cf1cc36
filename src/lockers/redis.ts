// This module's deep path before the layout by layer and backend (issue 22), kept for one
// release so deep imports keep working: the code lives in src/redis/locker.ts. Import from the package.
export * from '../redis/locker.js';
