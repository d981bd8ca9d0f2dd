export {
  createTestDatabase,
  type DatabaseTarget,
  type DatabaseTargetName,
  databaseTargets,
  type TestDatabase,
} from "./databases.js";
export {
  type DownloaderProcess,
  jsonLogLines,
  runDownloader,
  startDownloader,
} from "./downloader-process.js";
export { type GateProcess, runGate, startGate } from "./gate-process.js";
export { envelope, type RawGrpcAnswer, rawGrpcCall } from "./grpc-frames.js";
export { LeaseClient } from "./lease-client.js";
export { type PlatformDatabase, platformDatabase } from "./platform-database.js";
export type { TestServers } from "./provided-context.js";
export { python, pythonHasGrpc, pythonTier } from "./python-tier.js";
export { type RedisTarget, redisTargets } from "./redis-targets.js";
export { streamDrained } from "./stream-drained.js";
export { startServicesOn } from "./test-platform.js";
export { waitUntil } from "./wait.js";
