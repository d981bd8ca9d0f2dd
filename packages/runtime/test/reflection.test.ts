import { execFile } from "node:child_process";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { create, createFileRegistry, fromBinary, getOption } from "@bufbuild/protobuf";
import {
  type FileDescriptorProto,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
} from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { clientsV1, googleApi, reflectionV1, reflectionV1alpha } from "@gate/contracts";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HealthRegistry, registerHealth } from "../src/server/health.js";
import { registerReflection } from "../src/server/reflection.js";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
const clientsFile = "gate/clients/v1/clients_service.proto";
const clientsDependencies = [
  "buf/validate/validate.proto",
  "gate/validate/v1/rules.proto",
  "google/api/annotations.proto",
  "google/api/http.proto",
  "google/protobuf/descriptor.proto",
  "google/protobuf/duration.proto",
  "google/protobuf/field_mask.proto",
  "google/protobuf/timestamp.proto",
];
const servedServices = [
  "gate.clients.v1.ClientsService",
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
];

/** The test process serves the clients contract with a stub, plus health and reflection. */
function routes(router: ConnectRouter): void {
  router.service(clientsV1.ClientsService, { listClients: () => ({ clients: [] }) });
  registerHealth(router, new HealthRegistry());
  registerReflection(router, [clientsV1.ClientsService]);
}

const names = (files: Uint8Array[]): string[] => decode(files).map((f) => f.name);
const decode = (files: Uint8Array[]): FileDescriptorProto[] =>
  files.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes));

// Both versions run the same assertions; the clients differ only in their generated types.
const versions = [
  { label: "v1", service: reflectionV1.ServerReflection },
  { label: "v1alpha", service: reflectionV1alpha.ServerReflection },
] as const;

type Query = reflectionV1.ServerReflectionRequest["messageRequest"];
type Answer = reflectionV1.ServerReflectionResponse["messageResponse"];

describe.each(versions)("reflection $label in memory", ({ service }) => {
  const transport = createRouterTransport(routes);

  /** Sends the queries on one stream and returns the answers in order. */
  async function ask(...queries: Query[]): Promise<Answer[]> {
    const client = createClient(service, transport);
    async function* requests() {
      for (const messageRequest of queries) yield { host: "h", messageRequest };
    }
    const answers: Answer[] = [];
    for await (const response of client.serverReflectionInfo(requests())) {
      answers.push(response.messageResponse as Answer);
    }
    return answers;
  }

  async function askOne(query: Query): Promise<Answer> {
    const [only] = await ask(query);
    if (only === undefined) throw new Error("no answer");
    return only;
  }

  async function filesFor(query: Query): Promise<Uint8Array[]> {
    const answer = await askOne(query);
    if (answer.case !== "fileDescriptorResponse") throw new Error(`got ${answer.case}`);
    return answer.value.fileDescriptorProto;
  }

  it("lists the served services, health and reflection included", async () => {
    const answer = await askOne({ case: "listServices", value: "*" });
    expect(answer.case).toBe("listServicesResponse");
    const listed = answer.case === "listServicesResponse" ? answer.value.service : [];
    expect(listed.map((s) => s.name)).toEqual(servedServices);
  });

  it("answers a service symbol with its file and every transitive import", async () => {
    const files = await filesFor({
      case: "fileContainingSymbol",
      value: "gate.clients.v1.ClientsService",
    });
    const got = names(files);
    expect(got[0]).toBe(clientsFile);
    expect([...got].sort()).toEqual([clientsFile, ...clientsDependencies].sort());

    // The set is complete: it links on its own, and the HTTP annotations survive the trip.
    const byName = new Map(decode(files).map((f) => [f.name, f]));
    const main = byName.get(clientsFile);
    if (main === undefined) throw new Error("requested file missing");
    // A descriptor set lists each file after its imports; reflection sends the asked-for file
    // first, so order them (protobuf-es's resolver form misorders diamond-shaped imports).
    const ordered: FileDescriptorProto[] = [];
    const visit = (name: string) => {
      const file = byName.get(name);
      if (file === undefined || ordered.includes(file)) return;
      file.dependency.forEach(visit);
      ordered.push(file);
    };
    visit(clientsFile);
    const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: ordered }));
    const listClients = registry.getService("gate.clients.v1.ClientsService")?.method.listClients;
    expect(listClients).toBeDefined();
    if (listClients === undefined) return;
    const rule = getOption(listClients, googleApi.http);
    expect(rule.pattern).toEqual({ case: "get", value: "/api/v1/clients" });
  });

  it.each([
    ["method", "gate.clients.v1.ClientsService.ListClients", clientsFile],
    ["message", "gate.clients.v1.Client", clientsFile],
    ["field", "gate.clients.v1.Client.last_heartbeat", clientsFile],
    [
      "nested message",
      "grpc.health.v1.HealthListResponse.StatusesEntry",
      "grpc/health/v1/health.proto",
    ],
    ["enum", "grpc.health.v1.HealthCheckResponse.ServingStatus", "grpc/health/v1/health.proto"],
    ["enum value", "grpc.health.v1.HealthCheckResponse.SERVING", "grpc/health/v1/health.proto"],
    ["extension", "google.api.http", "google/api/annotations.proto"],
    ["dependency message", "google.protobuf.Timestamp", "google/protobuf/timestamp.proto"],
  ])("finds the file declaring a %s", async (_kind, symbol, file) => {
    const files = await filesFor({ case: "fileContainingSymbol", value: symbol });
    expect(names(files)[0]).toBe(file);
  });

  it("answers unknown symbols and files with NOT_FOUND and keeps the stream open", async () => {
    const answers = await ask(
      { case: "fileContainingSymbol", value: "gate.nope.v1.Missing" },
      { case: "fileByFilename", value: "gate/nope.proto" },
      { case: "allExtensionNumbersOfType", value: "gate.nope.v1.Missing" },
      {
        case: "fileContainingExtension",
        value: create(reflectionV1.ExtensionRequestSchema, {
          containingType: "google.protobuf.MethodOptions",
          extensionNumber: 1,
        }),
      },
      { case: "listServices", value: "" },
    );
    expect(answers.map((a) => a.case)).toEqual([
      "errorResponse",
      "errorResponse",
      "errorResponse",
      "errorResponse",
      "listServicesResponse",
    ]);
    for (const a of answers.slice(0, 4)) {
      expect(a.case === "errorResponse" && a.value.errorCode).toBe(Code.NotFound);
    }
  });

  it("finds a file by name, with its imports", async () => {
    const files = await filesFor({ case: "fileByFilename", value: "google/api/annotations.proto" });
    expect(names(files)).toEqual([
      "google/api/annotations.proto",
      "google/api/http.proto",
      "google/protobuf/descriptor.proto",
    ]);
  });

  it("sends each file once per stream, but always the one asked for", async () => {
    const answers = await ask(
      { case: "fileContainingSymbol", value: "gate.clients.v1.ClientsService" },
      { case: "fileContainingSymbol", value: "gate.clients.v1.Client" },
      { case: "fileByFilename", value: "google/protobuf/timestamp.proto" },
    );
    const perAnswer = answers.map((a) =>
      a.case === "fileDescriptorResponse" ? names(a.value.fileDescriptorProto) : [],
    );
    expect(perAnswer[0]).toHaveLength(1 + clientsDependencies.length);
    expect(perAnswer.slice(1)).toEqual([[clientsFile], ["google/protobuf/timestamp.proto"]]);
  });

  it("answers extension queries from the imported files", async () => {
    const httpNumber = googleApi.http.number;
    const answers = await ask(
      { case: "allExtensionNumbersOfType", value: "google.protobuf.MethodOptions" },
      {
        case: "fileContainingExtension",
        value: create(reflectionV1.ExtensionRequestSchema, {
          containingType: "google.protobuf.MethodOptions",
          extensionNumber: httpNumber,
        }),
      },
      { case: "allExtensionNumbersOfType", value: "gate.clients.v1.Client" },
    );
    expect(answers[0]).toMatchObject({
      case: "allExtensionNumbersResponse",
      value: { baseTypeName: "google.protobuf.MethodOptions", extensionNumber: [httpNumber] },
    });
    const second = answers[1];
    expect(
      second?.case === "fileDescriptorResponse" && names(second.value.fileDescriptorProto)[0],
    ).toBe("google/api/annotations.proto");
    expect(answers[2]).toMatchObject({ value: { extensionNumber: [] } });
  });

  it("echoes the request and its host", async () => {
    const client = createClient(service, transport);
    async function* one() {
      yield { host: "example:443", messageRequest: { case: "listServices", value: "" } } as const;
    }
    for await (const response of client.serverReflectionInfo(one())) {
      expect(response.validHost).toBe("example:443");
      expect(response.originalRequest?.messageRequest.case).toBe("listServices");
    }
  });

  it("rejects a request that asks for nothing", async () => {
    const rejected = ask({ case: undefined });
    await expect(rejected).rejects.toSatisfy(
      (e: unknown) => e instanceof ConnectError && e.code === Code.InvalidArgument,
    );
  });
});

describe("reflection over a real HTTP/2 server", () => {
  let server: http2.Http2Server;
  let address: string;
  const sessions = new Set<http2.ServerHttp2Session>();

  beforeAll(async () => {
    server = http2.createServer(connectNodeAdapter({ routes }));
    server.on("session", (session) => {
      sessions.add(session);
      session.on("close", () => sessions.delete(session));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    for (const session of sessions) session.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  describe.each(["v1", "v1alpha"])("@grpc/grpc-js reflection %s client", (version) => {
    // An independent peer: grpc-js with the reflection proto shipped by @grpc/reflection.
    function reflectionClient(): grpc.Client {
      const protoPath = `${repoRoot}node_modules/@grpc/reflection/build/proto/grpc/reflection/${version}/reflection.proto`;
      const definition = protoLoader.loadSync(protoPath, { keepCase: true, oneofs: true });
      const loaded = grpc.loadPackageDefinition(definition) as unknown as {
        grpc: { reflection: Record<string, { ServerReflection: grpc.ServiceClientConstructor }> };
      };
      const Service = loaded.grpc.reflection[version]?.ServerReflection;
      if (Service === undefined) throw new Error(`no reflection ${version} in ${protoPath}`);
      return new Service(address, grpc.credentials.createInsecure());
    }

    interface GrpcJsAnswer {
      message_response: string;
      list_services_response?: { service: { name: string }[] };
      file_descriptor_response?: { file_descriptor_proto: Buffer[] };
      error_response?: { error_code: number };
    }

    /** Writes every request on one bidi stream, half-closes, and collects the answers. */
    function exchange(requests: object[]): Promise<GrpcJsAnswer[]> {
      const client = reflectionClient();
      const call = (
        client as unknown as {
          ServerReflectionInfo(): grpc.ClientDuplexStream<object, GrpcJsAnswer>;
        }
      ).ServerReflectionInfo();
      const answers: GrpcJsAnswer[] = [];
      return new Promise<GrpcJsAnswer[]>((resolve, reject) => {
        call.on("data", (answer: GrpcJsAnswer) => answers.push(answer));
        call.on("error", reject);
        call.on("end", () => resolve(answers));
        for (const request of requests) call.write(request);
        call.end();
      }).finally(() => client.close());
    }

    it("lists services, fetches a file with its imports, reports NOT_FOUND", async () => {
      const [list, file, missing] = await exchange([
        { list_services: "" },
        { file_containing_symbol: "gate.clients.v1.ClientsService" },
        { file_by_filename: "nope.proto" },
      ]);
      expect(list?.list_services_response?.service.map((s) => s.name)).toEqual(servedServices);
      const files = file?.file_descriptor_response?.file_descriptor_proto ?? [];
      expect(names(files).sort()).toEqual([clientsFile, ...clientsDependencies].sort());
      expect(missing?.error_response?.error_code).toBe(grpc.status.NOT_FOUND);
    });

    it("survives a client that cancels mid-stream", async () => {
      const client = reflectionClient();
      const call = (
        client as unknown as { ServerReflectionInfo(): grpc.ClientDuplexStream<object, object> }
      ).ServerReflectionInfo();
      const cancelled = new Promise<grpc.ServiceError>((resolve) => call.on("error", resolve));
      call.on("data", () => call.cancel());
      call.write({ list_services: "" });
      expect((await cancelled).code).toBe(grpc.status.CANCELLED);
      client.close();
      // The server still answers afterwards.
      const [again] = await exchange([{ list_services: "" }]);
      expect(again?.message_response).toBe("list_services_response");
    });
  });

  describe("buf curl", () => {
    const buf = `${repoRoot}node_modules/.bin/buf`;
    const run = promisify(execFile);
    const curl = async (...args: string[]): Promise<string> => {
      const base = ["curl", "--protocol", "grpc", "--http2-prior-knowledge"];
      const { stdout } = await run(buf, [...base, ...args], { timeout: 20_000 });
      return stdout;
    };

    it.each(["grpc-v1", "grpc-v1alpha"])("lists services over %s reflection", async (protocol) => {
      const out = await curl(
        "--reflect-protocol",
        protocol,
        "--list-services",
        `http://${address}`,
      );
      expect(out.trim().split("\n").sort()).toEqual(servedServices);
    });

    it("lists methods", async () => {
      const out = await curl("--list-methods", `http://${address}`);
      const methods = out.trim().split("\n");
      expect(methods).toContain("gate.clients.v1.ClientsService/ListClients");
      expect(methods).toContain("grpc.health.v1.Health/Watch");
      expect(methods).toContain("grpc.reflection.v1.ServerReflection/ServerReflectionInfo");
    });

    it("calls health Check and a gate method through reflection", async () => {
      const health = await curl("-d", "{}", `http://${address}/grpc.health.v1.Health/Check`);
      expect(JSON.parse(health)).toEqual({ status: "SERVING" });
      const list = await curl(
        "-d",
        '{"pageSize": 10}',
        `http://${address}/gate.clients.v1.ClientsService/ListClients`,
      );
      expect(JSON.parse(list)).toEqual({});
    });
  });
});
