// Vitest globalSetup: one in-memory DynamoDB Local for the whole run on a free port, shared with
// test files through `inject('dynamoDb')`; each file then works in its own table (see store.ts).
import type { TestProject } from 'vitest/node';
import { startDynamoDbLocal, type StaticCredentials } from '../../src/store/index.js';

export interface ProvidedDynamoDb {
  endpoint: string;
  region: string;
  credentials: StaticCredentials;
}

declare module 'vitest' {
  export interface ProvidedContext {
    dynamoDb: ProvidedDynamoDb;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const local = await startDynamoDbLocal();
  project.provide('dynamoDb', {
    endpoint: local.endpoint,
    region: 'us-east-1',
    credentials: local.credentials,
  });
  return () => local.stop();
}
