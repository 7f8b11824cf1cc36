/**
 * Child process of test/reset-reasons.test.ts (run with NODE_DEBUG=koa-locked-session):
 * makes a session reset for each reason and prints, as its last stdout line, the
 * sids it used, so the parent can check that no debug line contains one.
 */
import Koa from 'koa';
import request from 'supertest';
import { MemoryStore, session } from '../../src/index.js';
import { cookieHeader } from './cookies.js';

const store = new MemoryStore();
const app = new Koa();
app.keys = ['reset-reasons-key'];
app.use(session({ master: store }));
app.use(async (ctx) => {
  if (ctx.path === '/inc') ctx.body = await ctx.session.withLock((s: { n?: number }) => (s.n = (s.n ?? 0) + 1));
  else ctx.body = await ctx.session.get();
});
const server = app.callback();

async function fresh(): Promise<{ cookie: string; sid: string }> {
  const res = await request(server).get('/inc').expect(200);
  const cookie = cookieHeader(res);
  const sid = /(?:^|; )sid=([^;]+)/.exec(cookie)![1]!;
  return { cookie, sid };
}

const sids: string[] = [];
const mark = (label: string): void => console.error(`--- ${label}`);

mark('bad-signature');
{
  const { sid } = await fresh();
  sids.push(sid);
  await request(server).get('/').set('Cookie', `sid=${sid}; sid.sig=AAAAAAAAAAAAAAAAAAAAAAAAAAA`).expect(200);
}
mark('bad-format');
await request(server).get('/').set('Cookie', 'sid=not-a-sid; sid.sig=AAAAAAAAAAAAAAAAAAAAAAAAAAA').expect(200);
mark('gone');
{
  const { cookie, sid } = await fresh();
  sids.push(sid);
  await store.destroy(sid);
  await request(server).get('/').set('Cookie', cookie).expect(200);
}
mark('bad-record');
{
  const { cookie, sid } = await fresh();
  sids.push(sid);
  await store.set(sid, 'not json', 60_000);
  await request(server).get('/').set('Cookie', cookie).expect(200);
}
console.log(JSON.stringify({ sids }));
