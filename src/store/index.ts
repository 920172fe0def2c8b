// store: aigw's one DynamoDB table — its schema (shared with CDK), clients, item keys, and
// DynamoDB Local for running the same table on a laptop and in tests.
export * from './table-schema.js';
export * from './dynamodb-client.js';
export * from './dynamodb-local.js';
export * from './group-commit.js';
