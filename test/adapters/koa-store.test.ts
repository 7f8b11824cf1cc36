/**
 * fromKoaStore on a real koa-session / koa-generic-session store: koa-redis on a
 * real redis-server. The store conformance suite and the HTTP increment race.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import redisStore from 'koa-redis';
import { fromKoaStore } from '../../src/adapters/koa-store.js';
import { StoreError } from '../../src/errors.js';
import { redisServer, skipReason } from '../helpers/servers.js';
import { storeConformance } from '../stores/conformance.js';
import { incrementRace } from './http-race.js';

const redis = await redisServer();
const skip = redis ? false : skipReason('redis');
const peers: Array<{ quit(): Promise<unknown> }> = [];
after(async () => {
  for (const peer of peers) await peer.quit().catch(() => {});
  await redis?.stop();
});

function koaRedis() {
  const store = redisStore({ url: redis!.url });
  peers.push(store as unknown as { quit(): Promise<unknown> });
  return store;
}

storeConformance('koa-redis (fromKoaStore)', () => fromKoaStore(koaRedis() as never), {
  skip,
  versioned: false,
  extraTests: (ctx) => {
    it('is named after the store class', () => {
      assert.equal(ctx.store.name, 'koa:RedisStore');
    });
    it('never hands a session of the old library to our deserializer', async () => {
      const peer = koaRedis();
      await peer.set(ctx.key('theirs'), { views: 3, cookie: { maxAge: 60_000 } }, 60_000);
      assert.equal(await fromKoaStore(peer as never).get(ctx.key('theirs')), undefined);
    });
  },
});

describe('fromKoaStore', () => {
  it('rejects what is not a koa store, naming what it lacks', () => {
    assert.throws(() => fromKoaStore({ get: async () => null } as never), /koa-generic-session store .*lacks set, destroy/);
  });

  it('a rejected call is a StoreError naming the store', async () => {
    const broken = fromKoaStore(
      {
        get: async () => {
          throw new Error('boom');
        },
        set: async () => {},
        destroy: async () => {},
      },
      { name: 'broken' },
    );
    await assert.rejects(broken.get('k'), (error: unknown) => error instanceof StoreError && error.message === '[broken] get failed: boom');
  });

  it('200 overlapping increments through koa-redis end at exactly 200', { skip }, async () => {
    await incrementRace({ prefix: `kls${randomUUID().slice(0, 8)}:`, master: fromKoaStore(koaRedis() as never) }, 200);
  });
});
