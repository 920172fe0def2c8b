import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One DynamoDB Local for the whole run; each test file works in a table of its own.
    globalSetup: ['test/setup/dynamodb.ts'],
    // Model builds and onnxruntime sessions are CPU-heavy; two cores means two workers.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    // A safety net against hangs only; speed is measured in bench/, never asserted here.
    testTimeout: 600_000,
    hookTimeout: 600_000,
  },
});
