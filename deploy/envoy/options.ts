// What differs between deployments of the same edge: file locations inside the Envoy
// container and the browser origins allowed by CORS. Read once, from the environment of
// `npm run generate:envoy`; a bad value stops the generator with every problem named.

export interface EdgeOptions {
  /** PEM certificate chain of the TLS listener. */
  readonly tlsCertificate: string;
  /** PEM private key of the TLS listener. */
  readonly tlsPrivateKey: string;
  /** Gate's descriptor set (deploy/envoy/build-descriptors.sh) for the transcoder. */
  readonly protoDescriptor: string;
  /** Browser origins allowed by CORS, e.g. "https://console.example.com"; ["*"] allows any. */
  readonly corsAllowedOrigins: readonly string[];
}

export const defaultEdgeOptions: EdgeOptions = {
  tlsCertificate: "/etc/envoy/certs/tls.crt",
  tlsPrivateKey: "/etc/envoy/certs/tls.key",
  protoDescriptor: "/etc/envoy/descriptors/gate.binpb",
  // Gate authenticates with API keys in headers, never cookies, so a page on another origin
  // gains nothing a script could not do directly; narrow it per deployment when wanted.
  corsAllowedOrigins: ["*"],
};

/** The environment variables the generator reads, with what each overrides. */
export const edgeOptionVariables = {
  ENVOY_TLS_CERT: "tlsCertificate",
  ENVOY_TLS_KEY: "tlsPrivateKey",
  ENVOY_PROTO_DESCRIPTOR: "protoDescriptor",
  ENVOY_CORS_ALLOWED_ORIGINS: "corsAllowedOrigins",
} as const satisfies Record<string, keyof EdgeOptions>;

export class EdgeOptionsError extends Error {
  override name = "EdgeOptionsError";
}

const originPattern = /^https?:\/\/[A-Za-z0-9.-]+(?::\d{1,5})?$/;

export function edgeOptionsFromEnv(env: Readonly<Record<string, string | undefined>>): EdgeOptions {
  const problems: string[] = [];
  const path = (name: keyof typeof edgeOptionVariables, fallback: string): string => {
    const value = env[name]?.trim();
    if (value === undefined || value === "") return fallback;
    if (!value.startsWith("/")) problems.push(`${name} must be an absolute path (got "${value}")`);
    return value;
  };
  const options: EdgeOptions = {
    tlsCertificate: path("ENVOY_TLS_CERT", defaultEdgeOptions.tlsCertificate),
    tlsPrivateKey: path("ENVOY_TLS_KEY", defaultEdgeOptions.tlsPrivateKey),
    protoDescriptor: path("ENVOY_PROTO_DESCRIPTOR", defaultEdgeOptions.protoDescriptor),
    corsAllowedOrigins: origins(env.ENVOY_CORS_ALLOWED_ORIGINS, problems),
  };
  if (problems.length > 0) {
    throw new EdgeOptionsError(`invalid Envoy options: ${problems.join("; ")}`);
  }
  return options;
}

function origins(value: string | undefined, problems: string[]): readonly string[] {
  if (value === undefined || value.trim() === "") return defaultEdgeOptions.corsAllowedOrigins;
  const list = value
    .split(",")
    .map((origin) => origin.trim())
    .filter((origin) => origin !== "");
  if (list.includes("*")) {
    if (list.length > 1) problems.push(`ENVOY_CORS_ALLOWED_ORIGINS: "*" must stand alone`);
    return ["*"];
  }
  for (const origin of list) {
    if (!originPattern.test(origin)) {
      problems.push(
        `ENVOY_CORS_ALLOWED_ORIGINS: "${origin}" is not an origin like https://host[:port]`,
      );
    }
  }
  return list;
}
