/**
 * Node flags for a child process that runs a workspace's bin from its TypeScript sources
 * rather than the compiled dist/: the bins and package exports pick src/ under this
 * condition (see tsconfig.base.json), so tests never run a stale build.
 */
export const fromSource: readonly string[] = ["--conditions=gate-source"];
