import { defaultServerConditions } from "vite";
import { defineConfig } from "vitest/config";

export default defineConfig({
  // Tests run the TypeScript sources of the workspace packages, never a stale dist/: the
  // "gate-source" export condition (see tsconfig.base.json) maps each @gate/* import to src/,
  // in the test files (ssr) and in the global setup (vitest's own __vitest__ environment).
  ssr: { resolve: { conditions: ["gate-source", ...defaultServerConditions] } },
  environments: {
    __vitest__: { resolve: { conditions: ["gate-source", ...defaultServerConditions] } },
  },
  test: {
    include: ["{packages,services,clients}/*/test/**/*.test.ts", "tests/e2e/**/*.test.ts"],
    globalSetup: ["tests/src/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    reporters: ["default"],
  },
});
