import type { EnvReader } from "@gate/runtime";

export interface ClientsConfig {
  /** "open": anyone may register; "enrollment": only holders of the enrollment key. */
  registration: "open" | "enrollment";
  enrollmentKey: string | undefined;
  /** A client not heard from for this long is shown as inactive. */
  inactiveAfterSeconds: number;
}

export function readClientsConfig(reader: EnvReader): ClientsConfig {
  const registration = reader.oneOf("CLIENT_REGISTRATION", ["open", "enrollment"] as const, "open");
  const enrollmentKey = reader.optionalString("CLIENT_ENROLLMENT_KEY");
  // At most 256: RegisterClient refuses longer enrollment keys, so a longer one could never match.
  if (
    registration === "enrollment" &&
    (enrollmentKey === undefined || enrollmentKey.length < 16 || enrollmentKey.length > 256)
  ) {
    reader.problem(
      "CLIENT_ENROLLMENT_KEY of 16 to 256 characters is required when CLIENT_REGISTRATION=enrollment",
    );
  }
  return {
    registration,
    enrollmentKey,
    inactiveAfterSeconds: reader.integer("CLIENT_INACTIVE_AFTER_SECONDS", 180, {
      min: 5,
      max: 86_400,
    }),
  };
}
