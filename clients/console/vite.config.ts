import { defaultClientConditions, defineConfig } from "vite";

// The console is served under /console/ by the platform (embedded) or the edge (production).
// "gate-source" resolves @gate/contracts to its TypeScript sources, so no prior tsc build
// is needed (see tsconfig.base.json).
export default defineConfig({
  base: "/console/",
  resolve: { conditions: ["gate-source", ...defaultClientConditions] },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // Budget: the first page's JavaScript stays under 150 KB gzipped (the build prints it).
    chunkSizeWarningLimit: 450,
  },
  server: {
    // `npx vite` in this folder: a dev server in front of a running `npm start`.
    proxy: { "^/(?!console/)": { target: "http://127.0.0.1:8080", changeOrigin: false } },
  },
});
