import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryStore, session, type SessionOptions } from '../src/index.js';
import { resolveOptions } from '../src/options.js';

describe('options', () => {
  it('session() with no options uses the documented defaults', () => {
    const o = resolveOptions();
    assert.equal(o.name, 'session');
    assert.equal(o.master.name, 'memory');
    assert.equal(o.locker.name, 'memory');
    assert.equal(o.ttl, 86_400_000);
    assert.equal(o.lockTimeout, 5000);
    assert.equal(o.rolling, false);
    assert.equal(o.mirrorWrites, 'await');
    assert.deepEqual(o.cookie, {
      name: 'sid',
      domain: undefined,
      path: '/',
      maxAge: 86_400_000,
      httpOnly: true,
      secure: 'auto',
      sameSite: 'lax',
      partitioned: false,
      signed: true,
    });
    assert.equal(resolveOptions({ name: 'cart' }).cookie.name, 'cart.sid');
  });

  it("never mutates the caller's options", () => {
    const input: SessionOptions = Object.freeze({ ttl: 1000, cookie: Object.freeze({ name: 'x' }) });
    const o = resolveOptions(input);
    assert.equal(o.cookie.maxAge, 1000);
    assert.deepEqual(input, { ttl: 1000, cookie: { name: 'x' } });
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['ttl', { ttl: -1 }, /`ttl` to be a positive number of ms, got `-1`/],
    ['ttl', { ttl: '1d' }, /`ttl` to be a positive number of ms, got `"1d"`/],
    ['lockTimeout', { lockTimeout: 0 }, /`lockTimeout` to be a positive number/],
    ['name', { name: 'my session' }, /`name` to be a JavaScript identifier/],
    ['name', { name: 'body' }, /`name` to be a name Koa does not use itself.*Pick another/],
    ['master', { master: {} }, /`master` to be a Store/],
    ['mirrors', { mirrors: {} }, /`mirrors` to be an array of Stores/],
    ['mirrors[0]', { mirrors: [1] }, /`mirrors\[0\]` to be a Store/],
    ['mirrorWrites', { mirrorWrites: 'later' }, /`mirrorWrites` to be 'await' or 'background'/],
    ['locker', { locker: {} }, /`locker` to be a Locker/],
    ['rolling', { rolling: 'yes' }, /`rolling` to be a boolean/],
    ['prefix', { prefix: 'a b' }, /`prefix` to be up to 64 chars/],
    ['genid', { genid: 'abc' }, /`genid` to be a function/],
    ['serializer', { serializer: {} }, /`serializer` to be an object with stringify/],
    ['cookie.name', { cookie: { name: 'a;b' } }, /`cookie.name` to be a cookie name/],
    ['cookie.maxAge', { cookie: { maxAge: 0 } }, /`cookie.maxAge` to be a positive number of ms or 'session'/],
    ['cookie.sameSite', { cookie: { sameSite: 'sometimes' } }, /`cookie.sameSite`/],
    ['cookie.secure', { cookie: { secure: 'yes' } }, /`cookie.secure` to be true, false or 'auto'/],
    ['cookie.secure', { cookie: { secure: false, sameSite: 'none' } }, /Browsers drop such cookies unless they are Secure/],
    ['cookie.path', { cookie: { path: 'relative' } }, /`cookie.path` to be a path starting with '\/'/],
    ['cookie.domain', { cookie: { domain: 'a b' } }, /`cookie.domain` to be a host name/],
    ['cookie.httpOnly', { cookie: { httpOnly: 1 } }, /`cookie.httpOnly` to be a boolean/],
  ];
  for (const [option, input, message] of bad) {
    it(`an invalid \`${option}\` fails at session() time, naming the option`, () => {
      assert.throws(
        () => session(input as SessionOptions),
        (error: Error) => error instanceof TypeError && message.test(error.message),
      );
    });
  }

  it('a master listed as its own mirror is refused', () => {
    const store = new MemoryStore();
    assert.throws(() => session({ master: store, mirrors: [store] }), /Remove the master from `mirrors`/);
  });

  it('MemoryStore options are validated too', () => {
    assert.throws(() => new MemoryStore({ max: 0 }), /MemoryStore `max` to be a positive integer/);
  });
});
