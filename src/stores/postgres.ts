// This module's deep path before the layout by layer and backend (issue 22), kept for one
// release so deep imports keep working: the code lives in src/postgres/store.ts. Import from the package.
export * from '../postgres/store.js';
