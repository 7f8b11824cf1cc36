/**
 * Bare Koa: the same routes with no session middleware at all. The ceiling
 * every other row is compared with.
 */
import type { VariantFactory } from '../lib/types.js';
import { koaApp } from '../lib/routes.js';

export const bareKoa: VariantFactory = async () => {
  const app = koaApp({ ops: null });
  return { listener: app.callback(), close: async () => {} };
};
