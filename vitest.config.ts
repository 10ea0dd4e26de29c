import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    // Tests start real servers and redis-server processes: two cores, two files at a time.
    maxWorkers: 2,
  },
});
