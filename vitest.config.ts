import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["{packages,services,clients}/*/test/**/*.test.ts", "tests/e2e/**/*.test.ts"],
    globalSetup: ["tests/src/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    reporters: ["default"],
  },
});
