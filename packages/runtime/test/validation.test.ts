import { create, type DescMessage, type Message, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { clientsV1, gateFiles, tasksV1 } from "@gate/contracts";
import { describe, expect, it } from "vitest";
import { requestValidator, validateMessage } from "../src/validation.js";

describe("request validation", () => {
  it("compiles the rules of every request message of every Gate service", () => {
    const inputs = gateFiles.flatMap((file) =>
      file.services.flatMap((service) => service.methods.map((method) => method.input)),
    );
    expect(inputs.length).toBeGreaterThan(10);
    for (const input of inputs) {
      // An empty message may break rules; it must never fail to evaluate them.
      expect(() => requestValidator.validate(input, create(input)), input.typeName).not.toThrow();
    }
  });

  it("refuses NUL characters in any string, naming the field", () => {
    const request = create(clientsV1.RegisterClientRequestSchema, {
      clientName: "ok",
      enrollmentKey: "a\u0000",
    });
    expect(() => validateMessage(clientsV1.RegisterClientRequestSchema, request)).toThrow(
      /^\[invalid_argument\] enrollment_key: must not contain NUL characters \(U\+0000\) \[gate\.no_nul\]$/,
    );
  });

  it("names a huge map key in the field path, cut short, in the message and the details", () => {
    const key = "é".repeat(90_000);
    const request = create(tasksV1.CreateTaskRequestSchema, {
      searchParams: { [key]: "v" },
      maxDocuments: 1,
    });
    let error: unknown;
    try {
      validateMessage(tasksV1.CreateTaskRequestSchema, request);
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(ConnectError);
    const { rawMessage, details } = error as ConnectError;
    expect(rawMessage).toMatch(/^search_params\["é{63}…"\]: key must be a letter/);
    const [detail] = details as { desc: DescMessage; value: Message }[];
    expect(detail && toBinary(detail.desc, detail.value).byteLength).toBeLessThan(2000);
  });

  it("refuses timestamps outside years 1 to 9999, which binary protobuf lets through", () => {
    const doc = (decisionDate: { seconds: bigint; nanos: number }) =>
      create(clientsV1.RegisterDocumentRequestSchema, {
        taskId: "00000000-0000-4000-8000-000000000000",
        registryId: "doc-1",
        sha256: "ab".repeat(32),
        decisionDate,
      });
    let error: unknown;
    try {
      validateMessage(
        clientsV1.RegisterDocumentRequestSchema,
        doc({ seconds: 253_402_300_800n, nanos: 0 }),
      );
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConnectError);
    expect(error).toMatchObject({
      code: Code.InvalidArgument,
      rawMessage: "decision_date: must be a time between years 1 and 9999 [gate.timestamp]",
    });
    expect((error as ConnectError).details).toHaveLength(1);
    expect(() =>
      validateMessage(
        clientsV1.RegisterDocumentRequestSchema,
        doc(timestampFromDate(new Date("2024-05-01T00:00:00Z"))),
      ),
    ).not.toThrow();
  });
  it("takes an error message from a heartbeat only with status error, blank ones from any", () => {
    const heartbeat = (status: string, errorMessage: string) => () =>
      validateMessage(
        clientsV1.HeartbeatRequestSchema,
        create(clientsV1.HeartbeatRequestSchema, { status, errorMessage }),
      );
    for (const status of ["", "active"]) {
      expect(heartbeat(status, "disk full")).toThrow(
        /^\[invalid_argument\] error_message: may only be set with status "error" \[heartbeat\.error_message\]$/,
      );
      expect(heartbeat(status, "  x  ")).toThrow(/\[heartbeat\.error_message\]$/);
      expect(heartbeat(status, "")).not.toThrow();
      expect(heartbeat(status, "   ")).not.toThrow();
    }
    expect(heartbeat("error", "disk full")).not.toThrow();
    expect(heartbeat("error", "")).not.toThrow();
    // Its own rules skip only the empty text.
    expect(heartbeat("error", "disk\u0007full")).toThrow(/\[string\.printable\]$/);
    expect(heartbeat("error", "x".repeat(2001))).toThrow(/\[string\.max_len\]$/);
  });

  it("refuses control characters in printable text, and takes empty text", () => {
    const register = (clientName: string, clientHost: string) => () =>
      validateMessage(
        clientsV1.RegisterClientRequestSchema,
        create(clientsV1.RegisterClientRequestSchema, { clientName, clientHost }),
      );
    expect(register("ok", "")).not.toThrow();
    expect(register("ok", "host\u001b[2K")).toThrow(
      /^\[invalid_argument\] client_host: must not contain control characters \[string\.printable\]$/,
    );
    expect(register("ok", "host\u007f")).toThrow(/\[string\.printable\]$/);
    const document = (classification: string) => () =>
      validateMessage(
        clientsV1.RegisterDocumentRequestSchema,
        create(clientsV1.RegisterDocumentRequestSchema, {
          taskId: "00000000-0000-4000-8000-000000000000",
          registryId: "doc-1",
          sha256: "ab".repeat(32),
          classification,
        }),
      );
    expect(document("")).not.toThrow();
    expect(document("civil\r")).toThrow(
      /^\[invalid_argument\] classification: must not contain control characters/,
    );
  });
});
