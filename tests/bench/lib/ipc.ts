// The small protocol between the benchmark (parent) and a server child over the IPC channel
// of child_process.fork. The parent asks, the child answers with the same `id`.

/** Parent → child. */
export type ParentMessage =
  | { type: "cpu"; id: number }
  | { type: "profile-start"; id: number; intervalUs: number }
  | { type: "profile-stop"; id: number; file: string }
  | { type: "stop"; id: number };

/** Child → parent. */
export type ChildMessage =
  | { type: "ready"; url: string; port: number }
  | { type: "failed"; error: string }
  | { type: "cpu"; id: number; userUs: number; systemUs: number }
  | { type: "done"; id: number }
  | { type: "error"; id: number; error: string };

export function isChildMessage(value: unknown): value is ChildMessage {
  return typeof value === "object" && value !== null && "type" in value;
}

export function isParentMessage(value: unknown): value is ParentMessage {
  return typeof value === "object" && value !== null && "type" in value && "id" in value;
}
