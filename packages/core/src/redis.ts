/** Wake-ups across nodes by Redis pub/sub, as its own entry point: `@taskflow/core/redis`. */
export { RedisTransport } from './wake/redis.ts';
