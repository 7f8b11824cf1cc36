/**
 * The load generator's ceiling: a plain `node:http` listener that answers every
 * request with a fixed JSON body, no Koa, no routing, no session. If it serves
 * clearly more than bare Koa on the same core, bare Koa is limited by Koa and
 * not by the client driving it (issue 12, item 4).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { appStats } from '../lib/routes.js';
import type { VariantFactory } from '../lib/types.js';

const BODY = Buffer.from('{"ok":true}');

export const nodeHttp: VariantFactory = async () => {
  const listener = (_req: IncomingMessage, res: ServerResponse): void => {
    appStats.requests++;
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': BODY.length });
    res.end(BODY);
  };
  return { listener, close: async () => {} };
};
