// routing: which model version serves a request: the registry of served versions, aliases in
// DynamoDB (blue/green, weighted canary, sticky assignment) and automatic rollback on canary health.
export * from './model-registry.js';
export * from './aliases.js';
export * from './alias-store.js';
export * from './sticky-assignment.js';
export * from './canary-health.js';
export * from './model-resolver.js';
export * from './upstream-models.js';
export * from './release-setup.js';
