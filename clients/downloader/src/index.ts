export {
  type DocumentRegistration,
  DownloadServerClient,
  type DownloadServerClientOptions,
} from "./sdk/download-server-client.js";
export {
  type DocumentCounts,
  type LeaseEvent,
  type LeaseRef,
  LeaseRejectedError,
  LeaseSession,
  LeaseStreamClosedError,
} from "./sdk/lease-session.js";
export * from "./sources/index.js";
