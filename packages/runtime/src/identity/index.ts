export {
  type ApiKeyRole,
  apiKeyRoles,
  generateApiKey,
  hashApiKey,
  keyPrefixLength,
} from "./api-key-format.js";
export {
  AmbiguousKeyPrefixError,
  type ApiKeyRecord,
  ApiKeyStore,
  type ApiKeyStoreOptions,
  DuplicateKeyError,
  InvalidApiKeyError,
  type NewApiKey,
  type VerifiedKey,
} from "./api-key-store.js";
export { identityMigrationsDir, identitySchema, migrateIdentity } from "./identity-migrations.js";
