import { defaultServerConditions } from "vite";
import { defineConfig } from "vitest/config";

export default defineConfig({
  // Tests run the TypeScript sources of the workspace packages, never a stale dist/: the
  // "gate-source" export condition (see tsconfig.base.json) maps each @gate/* import to src/.
  ssr: { resolve: { conditions: ["gate-source", ...defaultServerConditions] } },
  test: {
    include: ["{packages,services,clients}/*/test/**/*.test.ts", "tests/e2e/**/*.test.ts"],
    globalSetup: ["tests/src/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    reporters: ["default"],
  },
});
