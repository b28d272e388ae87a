// Public API of @agentid/replay-redis.
export { createRedisReplayCache } from './cache.js'
export type { RedisReplayCache, RedisReplayCacheOptions, RedisClientLike } from './cache.js'
