/**
 * The one message format of option errors (src/util/validate.ts), shared by
 * session(), every store and every locker: "Expected <owner> `option` to be
 * <what>, got `<value>`", and "Unknown <owner> option `x`. <hint>".
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StoreError } from '../src/errors.js';
import { checkTtl, checkVersionedWrite, storeProblem, Validator } from '../src/util/validate.js';

const check = new Validator('ThingStore');

describe('Validator', () => {
  it('names the owner, the option, what it expected and the value it got', () => {
    assert.throws(() => check.positiveMs('timeoutMs', -1, 5), {
      name: 'TypeError',
      message: 'koa-locked-session: Expected ThingStore `timeoutMs` to be a positive number of ms, got `-1`',
    });
    assert.throws(() => new Validator('').bool('rolling', 'yes', false), {
      message: 'koa-locked-session: Expected `rolling` to be a boolean, got `"yes"`',
    });
    assert.throws(
      () => check.fail('genid', 'a function', () => 'secret source', 'Pass a function'),
      { message: 'koa-locked-session: Expected ThingStore `genid` to be a function, got `a function`. Pass a function' },
      'a function is never printed by its source',
    );
  });

  it('returns the value, or the fallback when undefined', () => {
    assert.equal(check.positiveMs('a', undefined, 7), 7);
    assert.equal(check.positiveMs('a', 3, 7), 3);
    assert.equal(check.nonNegativeMs('a', 0, 7), 0);
    assert.throws(() => check.nonNegativeMs('a', -1, 7), /`a` to be a non-negative number of ms, got `-1`/);
    assert.equal(check.positiveInt('n', undefined), undefined);
    assert.throws(() => check.positiveInt('n', 1.5), /`n` to be a positive integer, got `1.5`/);
    assert.equal(check.oneOf('mode', undefined, ['a', 'b'], 'a'), 'a');
    assert.throws(() => check.oneOf('mode', 'c', ['a', 'b', false], 'a'), /`mode` to be 'a', 'b' or false, got `"c"`/);
    assert.throws(() => check.string('prefix', 'a b', '', /^\S*$/, 'a string without spaces'), /`prefix` to be a string without spaces/);
    assert.throws(() => check.object('options', 'x' as never), /`options` to be an object, got `"x"`/);
  });

  it('refuses unknown keys, with a hint when one is known, else the list of options', () => {
    assert.doesNotThrow(() => check.known({ a: 1, b: undefined }, ['a', 'b']));
    assert.throws(() => check.known({ c: 1 }, ['a', 'b'], { c: 'Use `a`' }), {
      message: 'koa-locked-session: Unknown ThingStore option `c`. Use `a`',
    });
    assert.throws(() => new Validator('').known({ x: 1 }, ['a', 'b'], {}, 'cookie.'), {
      message: 'koa-locked-session: Unknown option `cookie.x`. Known options: a, b',
    });
    assert.throws(
      () => check.known({ toString: 1 }, ['a'], {}),
      /Unknown ThingStore option `toString`/,
      'inherited names of hints are not hints',
    );
  });
});

describe('storeProblem', () => {
  it('undefined for a Store; else the members it lacks', () => {
    assert.equal(storeProblem({ name: 'x', get() {}, set() {}, destroy() {} }), undefined);
    assert.equal(storeProblem({ name: 'x', get() {} }), 'it lacks set(), destroy()');
    assert.equal(storeProblem(null), 'it lacks name, get(), set(), destroy()');
  });
});

describe('per-call checks of the stores', () => {
  it('a TTL must be a positive number of ms; fractions round up', () => {
    assert.equal(checkTtl('redis', 'SET', 1.2), 2);
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '5' as unknown as number]) {
      assert.throws(
        () => checkTtl('redis', 'SET', bad),
        (error: unknown) =>
          error instanceof StoreError &&
          error.status === 500 &&
          /^\[redis\] SET failed: expected ttlMs to be a positive number of ms/.test(error.message),
      );
    }
  });

  it('a versioned write needs a safe version and a known condition', () => {
    assert.doesNotThrow(() => checkVersionedWrite('mongo', 'WRITE', 2, 1));
    assert.doesNotThrow(() => checkVersionedWrite('mongo', 'WRITE', 2, null));
    assert.doesNotThrow(() => checkVersionedWrite('mongo', 'WRITE', 2, 'newer'));
    assert.throws(() => checkVersionedWrite('mongo', 'WRITE', -1, 1), /^StoreError: \[mongo\] WRITE failed: expected version/);
    assert.throws(() => checkVersionedWrite('mongo', 'WRITE', 1, 'older' as never), /expected condition to be null, 'newer' or a version/);
  });
});
