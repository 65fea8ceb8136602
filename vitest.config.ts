import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    // stopping Kafka, FerretDB and PostgreSQL after the integration run
    teardownTimeout: 60_000,
    projects: [
      {
        test: {
          name: "property",
          include: ["test/property/**/*.test.ts"],
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          // PostgreSQL, Kafka and FerretDB, started once per run (see test/harness/).
          globalSetup: ["test/harness/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 180_000,
          // 2 cores, shared servers: one file at a time.
          fileParallelism: false,
          maxWorkers: 1,
        },
      },
    ],
  },
})
