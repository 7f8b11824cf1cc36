import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import request from 'supertest';
import { MemoryStore, SessionError } from '../src/index.js';
import { cookieHeader, makeApp } from './helpers/app.js';

declare module '../src/index.js' {
  interface SessionData {
    a?: { b: number; deep?: { c: number } };
    list?: Array<{ x: number }>;
  }
}

type Snap = Record<string, any>;

/** Every route we know of that could change an object, each applied to the snapshot or something reached from it. */
const ROUTES: Array<[string, (s: Snap) => unknown]> = [
  ['assignment', (s) => (s.a = 1)],
  ['nested assignment', (s) => (s.a.b = 999)],
  ['sloppy-mode assignment', (s) => new Function('s', 's.a.b = 999')(s)],
  ['new property', (s) => (s.fresh = 1)],
  ['delete', (s) => delete s.a],
  ['nested delete', (s) => delete s.a.b],
  ['descriptor value', (s) => (Object.getOwnPropertyDescriptor(s, 'a')!.value.b = 999)],
  ['descriptors value', (s) => (Object.getOwnPropertyDescriptors(s).a!.value.b = 999)],
  ['nested descriptor value', (s) => (Object.getOwnPropertyDescriptor(s.a, 'deep')!.value.c = 999)],
  ['Object.assign', (s) => Object.assign(s, { a: 1 })],
  ['Object.assign nested', (s) => Object.assign(s.a, { b: 999 })],
  ['Object.defineProperty', (s) => Object.defineProperty(s, 'a', { value: 1 })],
  ['Object.defineProperty nested', (s) => Object.defineProperty(s.a, 'b', { value: 999 })],
  ['Reflect.defineProperty', (s) => Reflect.defineProperty(s.a, 'b', { value: 999 })],
  ['Object.setPrototypeOf', (s) => Object.setPrototypeOf(s, { polluted: true })],
  ['Reflect.setPrototypeOf', (s) => Reflect.setPrototypeOf(s.a, null)],
  ['__proto__ assignment', (s) => (s.a.__proto__ = { polluted: true })],
  ['Object.preventExtensions', (s) => Object.preventExtensions(s)],
  ['Object.freeze nested', (s) => Object.freeze(s.a)],
  ['Reflect.set', (s) => Reflect.set(s, 'a', 1)],
  ['Reflect.set nested', (s) => Reflect.set(s.a, 'b', 999)],
  ['Reflect.deleteProperty', (s) => Reflect.deleteProperty(s.a, 'b')],
  ['array push', (s) => s.list.push({ x: 9 })],
  ['array sort', (s) => s.list.sort((p: any, q: any) => q.x - p.x)],
  ['array reverse', (s) => s.list.reverse()],
  ['array splice', (s) => s.list.splice(0, 1)],
  ['array fill', (s) => s.list.fill(null)],
  ['array length', (s) => (s.list.length = 0)],
  ['array element', (s) => (s.list[0] = { x: 999 })],
  ['object in an array', (s) => (s.list[0].x = 999)],
  ['object via Array.from', (s) => (Array.from(s.list as Snap[])[0]!.x = 999)],
  [
    'object via for…of',
    (s) => {
      for (const item of s.list) item.x = 999;
    },
  ],
  ['object via Object.values', (s) => (Object.values(s).find((v: any) => v?.b)!.b = 999)],
  ['object via Object.entries', (s) => (Object.entries(s).find(([k]) => k === 'a')![1].b = 999)],
  ['object via a shallow spread', (s) => ({ ...s }.a.b = 999)],
];

describe('the get() snapshot is read-only by every route', () => {
  it('each write route throws SessionError naming withLock; later get()s and requests see the data unchanged', async () => {
    const original = { a: { b: 1, deep: { c: 2 } }, list: [{ x: 1 }, { x: 2 }] };
    const results: Record<string, string> = {};
    const app = makeApp({ master: new MemoryStore() }, async (ctx) => {
      if (ctx.path === '/seed') {
        await ctx.session.withLock((s) => void Object.assign(s, structuredClone(original)));
      } else if (ctx.path === '/attack') {
        for (const [label, route] of ROUTES) {
          try {
            route(await ctx.session.get());
            results[label] = 'no error';
          } catch (error) {
            results[label] = error instanceof SessionError && /withLock/.test(error.message) ? 'refused' : `other: ${String(error)}`;
          }
        }
      }
      ctx.body = await ctx.session.get();
    });
    const server = app.callback();
    const seeded = await request(server).get('/seed');
    const cookie = cookieHeader(seeded.headers['set-cookie']);
    const attacked = await request(server).get('/attack').set('Cookie', cookie);
    const notRefused = Object.entries(results).filter(([, r]) => r !== 'refused');
    assert.deepEqual(notRefused, [], 'every route must throw our error');
    assert.equal(Object.keys(results).length, ROUTES.length);
    assert.deepEqual(attacked.body, original, 'a later get() in the same request sees the original data');
    const later = await request(server).get('/').set('Cookie', cookie);
    assert.deepEqual(later.body, original);
    assert.equal(({} as Snap).polluted, undefined);
  });

  it('reads and copies work: identity is stable, a JSON copy is writable', async () => {
    const app = makeApp({ master: new MemoryStore() }, async (ctx) => {
      if (ctx.path === '/seed') await ctx.session.withLock((s) => void (s.a = { b: 1 }));
      const snap = await ctx.session.get();
      const copy = JSON.parse(JSON.stringify(snap));
      copy.a.b = 5;
      ctx.body = { same: snap.a === snap.a, copy, keys: Object.keys(snap), b: Object.getOwnPropertyDescriptor(snap, 'a')!.value.b };
    });
    const server = app.callback();
    const seeded = await request(server).get('/seed');
    const res = await request(server).get('/').set('Cookie', cookieHeader(seeded.headers['set-cookie']));
    assert.deepEqual(res.body, { same: true, copy: { a: { b: 5 } }, keys: ['a'], b: 1 });
  });
});
