// audit: append-only, hash-chained audit records of administrative changes and requests in
// DynamoDB (per-writer daily streams, kept for a retention period), and reading them back.
export * from './audit-record.js';
export * from './audit-log.js';
export * from './audit-query.js';
export * from './request-audit.js';
export * from './config-change.js';
