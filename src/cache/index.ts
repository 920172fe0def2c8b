// cache: the response cache — canonical request key, per-request caching policy, and entries in
// the store's table that replay a finished generation's events (streamed or not).
export * from './cache-config.js';
export * from './cache-key.js';
export * from './cache-policy.js';
export * from './cached-generation.js';
export * from './response-cache.js';
export * from './errors.js';
