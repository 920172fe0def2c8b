// admission: who may call and how much — API keys now; rate limits, concurrency leases and
// budgets join here, all as conditional writes on the store's table.
export * from './api-keys.js';
