import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { DescService, FileRegistry } from "@bufbuild/protobuf";
import { gateFiles, healthV1, reflectionV1, reflectionV1alpha } from "@gate/contracts";
import { listRestRoutes } from "@gate/runtime";
import { envoyYamlPath } from "../../deploy/envoy/render.js";
import type { EdgeService } from "../../deploy/envoy/routes.js";
import { edgeServices, edgeSettings, serviceTypeNames } from "../../deploy/envoy/routes.js";
import type { EnvoyCheckContext } from "./envoy-checks.js";
import { buildEnvoyApiRegistry, buildGateDescriptors } from "./envoy-protos.js";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

/** What every process serves besides its own services. */
export const platformServices: readonly DescService[] = [
  healthV1.file_grpc_health_v1_health,
  reflectionV1.file_grpc_reflection_v1_reflection,
  reflectionV1alpha.file_grpc_reflection_v1alpha_reflection,
].flatMap((file) => file.services);

export interface EnvoyFixture {
  /** Envoy's API, compiled from the protos in @grpc/grpc-js-xds. */
  readonly api: FileRegistry;
  /** Gate's descriptor set as build-descriptors.sh writes it. */
  readonly descriptors: FileRegistry;
  /** The committed deploy/envoy/envoy.yaml. */
  readonly committed: string;
  readonly context: EnvoyCheckContext;
  /** Scratch folder of this fixture. */
  readonly dir: string;
  dispose(): Promise<void>;
}

export async function loadEnvoyFixture(): Promise<EnvoyFixture> {
  const dir = await mkdtemp(join(tmpdir(), "gate-envoy-"));
  const [api, gate, committed] = await Promise.all([
    buildEnvoyApiRegistry(dir),
    buildGateDescriptors(join(dir, "descriptors")),
    readFile(join(repoRoot, envoyYamlPath), "utf8"),
  ]);
  return {
    api,
    descriptors: gate.registry,
    committed,
    context: checkContext(gate.registry, edgeServices, contractServices()),
    dir,
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}

/** The services of Gate's generated contracts: what the in-process gateway serves. */
export function contractServices(): DescService[] {
  return gateFiles.flatMap((file) => file.services);
}

/** A check context for a table and the descriptors of its services. */
export function checkContext(
  descriptors: FileRegistry,
  services: readonly EdgeService[],
  available: readonly DescService[],
): EnvoyCheckContext {
  const implemented = services
    .filter((s) => s.implemented)
    .flatMap((s) => available.filter((d) => serviceTypeNames(s).includes(d.typeName)));
  return {
    descriptors,
    platformServices,
    services,
    restRoutes: listRestRoutes(implemented),
    strictRateLimit: edgeSettings.strictRateLimit,
  };
}
