export {
  type CourtRegistrySourceOptions,
  createCourtRegistrySource,
  type RetryInfo,
} from "./court-registry.js";
export * from "./source.js";
