import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    // Threads-runtime tests measure real latency: keep test files from competing for the 2 cores.
    fileParallelism: false,
  },
});
