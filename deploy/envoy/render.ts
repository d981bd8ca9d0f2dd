import type { DescService } from "@bufbuild/protobuf";
import { gateFiles } from "@gate/contracts";
import type { EdgeSettings } from "./config.js";
import { buildEnvoyConfig } from "./config.js";
import type { EdgeOptions } from "./options.js";
import { defaultEdgeOptions, edgeOptionVariables } from "./options.js";
import type { EdgeService } from "./routes.js";
import { edgeServices, edgeSettings } from "./routes.js";
import { writeYaml } from "./yaml-writer.js";

/** Where the committed config lives, relative to the repository root. */
export const envoyYamlPath = "deploy/envoy/envoy.yaml";

export interface RenderInput {
  readonly services?: readonly EdgeService[];
  readonly descriptors?: readonly DescService[];
  readonly settings?: EdgeSettings;
  readonly options?: EdgeOptions;
}

/** envoy.yaml as the generator writes it; by default exactly the committed file's content. */
export function renderEnvoyYaml(input: RenderInput = {}): string {
  const config = buildEnvoyConfig({
    services: input.services ?? edgeServices,
    descriptors: input.descriptors ?? gateFiles.flatMap((file) => file.services),
    settings: input.settings ?? edgeSettings,
    options: input.options ?? defaultEdgeOptions,
  });
  return writeYaml(config, header);
}

const header = `Gate's edge: Envoy in front of every service. GENERATED, do not edit.
Source: deploy/envoy/routes.ts (the service table) and the google.api.http annotations in
proto/. Regenerate with \`npm run generate:envoy\`; a test fails while this file is stale.
Overrides at generation time: ${Object.keys(edgeOptionVariables).join(", ")}.
Envoy needs, mounted into its container: the TLS pair (deploy/envoy/make-dev-cert.sh makes a
self-signed one) and Gate's descriptor set (deploy/envoy/build-descriptors.sh).
See deploy/README.md.`;
