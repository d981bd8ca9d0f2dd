// CreateTasks for the tasks benchmark, lean enough that creating tasks costs the load process
// little next to the server it measures. A Connect client builds every task as a message,
// encodes it, and decodes every created task in full (search parameters, timestamps, …):
// that CPU, on the cores the server and PostgreSQL share, lowered the measured throughput.
// Here gRPC is spoken directly on one node:http2 connection: the request is the tasks'
// bytes written by hand (their search parameters encoded once), and the response is walked
// only for the created task ids. Like a Connect client it accepts gzip-compressed answers,
// so the server does the same work for it (it compresses answers of 1 KiB and more). Failures reject with the ConnectError a Connect client
// would have raised (same code, same message), so the benchmark reports them as before.
import { type ClientHttp2Session, connect, constants, type IncomingHttpHeaders } from "node:http2";
import { gunzipSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeFromHttpStatus } from "@connectrpc/connect/protocol-grpc";
import { tasksV1 } from "@gate/contracts";
import { grpcRequest } from "./lease-stream-client.js";

const createTasksPath = `/${tasksV1.TasksService.typeName}/${tasksV1.TasksService.method.createTasks.name}`;

// The benchmark's tasks: task n searches CourtRegion n % 25 and INSType 1 + n % 3 (so its
// parameters depend on n % 75), from page 1 + n % 999999, for at most 10 documents.
const paramsCycle = 75;
const maxDocuments = 10;

/** Each NewTask's search_params field, encoded once per n % 75 by protobuf-es itself. */
const encodedParams = Array.from({ length: paramsCycle }, (_, n) =>
  toBinary(
    tasksV1.NewTaskSchema,
    create(tasksV1.NewTaskSchema, {
      searchParams: { CourtRegion: String(n % 25), INSType: String(1 + (n % 3)) },
    }),
  ),
);
// A task is its parameters, start_page (a varint of at most 3 bytes) and max_documents.
const maxTaskBytes = Math.max(...encodedParams.map((p) => p.length)) + 4 + 2;
if (maxTaskBytes >= 128) throw new Error("a task's length no longer fits one varint byte");

const tag = (field: number, wireType: WireType) => (field << 3) | wireType;

/**
 * The gRPC frame (5-byte prefix, then a CreateTasksRequest) of tasks n = first … first +
 * count − 1. Fields are written after one another, which protobuf reads as one message.
 */
function createTasksFrame(first: number, count: number): Buffer {
  const out = Buffer.allocUnsafe(5 + count * (2 + maxTaskBytes));
  let pos = 5;
  const varint = (value: number) => {
    while (value > 0x7f) {
      out[pos++] = (value & 0x7f) | 0x80;
      value >>>= 7;
    }
    out[pos++] = value;
  };
  for (let n = first; n < first + count; n++) {
    const params = encodedParams[n % paramsCycle] as Uint8Array;
    out[pos++] = tag(1, WireType.LengthDelimited); // CreateTasksRequest.tasks
    const lengthAt = pos++;
    out.set(params, pos);
    pos += params.length;
    out[pos++] = tag(2, WireType.Varint); // start_page
    varint(1 + (n % 999_999));
    out[pos++] = tag(3, WireType.Varint); // max_documents
    varint(maxDocuments);
    out[lengthAt] = pos - lengthAt - 1;
  }
  out[0] = 0; // not compressed
  out.writeUInt32BE(pos - 5, 1);
  return out.subarray(0, pos);
}

/** The task_id of every task in a CreateTasksResponse, skipping the rest of each task. */
function createdTaskIds(response: Uint8Array): string[] {
  const reader = new BinaryReader(response);
  const ids: string[] = [];
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field !== 1 || wireType !== WireType.LengthDelimited) {
      reader.skip(wireType, field);
      continue;
    }
    const length = reader.uint32();
    const end = reader.pos + length;
    let id = "";
    while (reader.pos < end) {
      const [taskField, taskWireType] = reader.tag();
      if (taskField === 1 && taskWireType === WireType.LengthDelimited) {
        id = reader.string();
        break;
      }
      reader.skip(taskWireType, taskField);
    }
    reader.pos = end;
    ids.push(id);
  }
  return ids;
}

function statusError(headers: IncomingHttpHeaders): ConnectError | undefined {
  const status = headers["grpc-status"];
  if (status === undefined || status === "0") return undefined;
  const message = headers["grpc-message"];
  const code = Number(status);
  return new ConnectError(
    typeof message === "string" ? decodeURIComponent(message) : "",
    code in Code ? code : Code.Unknown,
  );
}

/** Creates the benchmark's tasks through CreateTasks on one HTTP/2 connection. */
export class TaskProducer {
  #session: ClientHttp2Session | undefined;
  /** The next task's serial number, which decides its parameters. */
  #serial = 0;

  constructor(
    readonly url: string,
    readonly apiKey: string,
    readonly timeoutMs: number,
  ) {}

  /** Creates `count` tasks (1 to 1000) in one call; their ids, in request order. */
  create(count: number): Promise<string[]> {
    const body = createTasksFrame(this.#serial, count);
    this.#serial += count;
    return new Promise((resolve, reject) => {
      const stream = grpcRequest(this.#connection(), createTasksPath, this.apiKey, {
        "grpc-accept-encoding": "gzip",
      });
      const chunks: Buffer[] = [];
      let failure: ConnectError | undefined;
      let status: string | undefined;
      const timer = setTimeout(() => {
        failure ??= new ConnectError("The operation was aborted due to timeout", Code.Canceled);
        stream.close(constants.NGHTTP2_CANCEL);
      }, this.timeoutMs);
      // A trailers-only response carries grpc-status in the headers.
      const onStatus = (headers: IncomingHttpHeaders) => {
        failure ??= statusError(headers);
        status ??= headers["grpc-status"] as string | undefined;
      };
      stream.on("response", (headers) => {
        const httpStatus = headers[":status"];
        if (httpStatus !== undefined && httpStatus !== 200) {
          failure ??= new ConnectError(`HTTP ${httpStatus}`, codeFromHttpStatus(httpStatus));
        }
        onStatus(headers);
      });
      stream.on("trailers", onStatus);
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("error", (error: Error) => {
        failure ??= ConnectError.from(error, Code.Internal);
      });
      stream.on("close", () => {
        clearTimeout(timer);
        if (failure === undefined && status === undefined) {
          failure = new ConnectError("protocol error: missing status", Code.Internal);
        }
        if (failure !== undefined) return reject(failure);
        const data = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
        if (data.length < 5 || data.length < 5 + data.readUInt32BE(1)) {
          return reject(new ConnectError("protocol error: incomplete response", Code.Internal));
        }
        const message = data.subarray(5, 5 + data.readUInt32BE(1));
        // Flag 1: compressed with the grpc-encoding the answer names, gzip being all we accept.
        resolve(createdTaskIds(data[0] === 1 ? gunzipSync(message) : message));
      });
      stream.end(body);
    });
  }

  /** The connection, opened again if the last one ended (as Connect's session manager does). */
  #connection(): ClientHttp2Session {
    if (this.#session === undefined || this.#session.closed || this.#session.destroyed) {
      this.#session = connect(this.url);
      // A failed connection fails its calls, which report it; nothing more to do here.
      this.#session.on("error", () => {});
    }
    return this.#session;
  }

  close(): void {
    this.#session?.destroy();
  }
}
