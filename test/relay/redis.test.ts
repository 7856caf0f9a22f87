/** The shared relay suite on Redis (a `redis-server` started for this file on a free port). */
import { afterAll, beforeAll } from 'bun:test';
import { type RedisServer, startRedis } from '../helpers/redis.ts';
import { redisFactory } from './harness.ts';
import { relaySuite } from './suite.ts';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

relaySuite(redisFactory(() => redis.url));
