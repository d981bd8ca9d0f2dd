import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { fromJson } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { tasksV1 } from "@gate/contracts";
import type { EnvVars } from "@gate/runtime";

const usage = `gate tasks — create and plan download tasks on a running Gate

  gate tasks create --param CourtRegion=11 --param INSType=1 [--start-page 1] [--max-documents 100] [--priority 0]
  gate tasks create --file tasks.json        a JSON array of tasks (CreateTasks shape) or one task
  gate tasks plan --param CourtRegion=11 --first-page 1 --last-page 500 --pages-per-task 10 --documents-per-page 10

Options: --api-url (or GATE_API_URL, default http://127.0.0.1:8080), --api-key (or GATE_API_KEY),
--idempotency-key for create. Answers are printed as JSON.`;

/** `gate tasks …`: an operator's client of the tasks service, over the Connect protocol. */
export async function runTasksCommand(env: EnvVars, args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      "api-url": { type: "string" },
      "api-key": { type: "string" },
      param: { type: "string", multiple: true },
      file: { type: "string" },
      "start-page": { type: "string" },
      "max-documents": { type: "string" },
      priority: { type: "string" },
      "max-attempts": { type: "string" },
      "idempotency-key": { type: "string" },
      "first-page": { type: "string" },
      "last-page": { type: "string" },
      "pages-per-task": { type: "string" },
      "documents-per-page": { type: "string" },
    },
  });
  const [action] = positionals;
  if (action !== "create" && action !== "plan") {
    console.log(usage);
    if (action !== undefined && action !== "help") process.exitCode = 1;
    return;
  }
  const apiKey = values["api-key"] ?? env.GATE_API_KEY;
  const transport = createConnectTransport({
    baseUrl: values["api-url"] ?? env.GATE_API_URL ?? "http://127.0.0.1:8080",
    httpVersion: "1.1",
    interceptors: [
      (next) => (req) => {
        if (apiKey !== undefined) req.header.set("x-api-key", apiKey);
        return next(req);
      },
    ],
  });
  const tasks = createClient(tasksV1.TasksService, transport);
  const searchParams = parseParams(values.param ?? []);
  const number = (name: keyof typeof values) => {
    const raw = values[name];
    if (raw === undefined) return 0;
    if (typeof raw !== "string" || !/^-?\d+$/.test(raw))
      throw new Error(`--${name} must be an integer`);
    return Number(raw);
  };
  if (action === "plan") {
    const res = await tasks.planSearch({
      searchParams,
      firstPage: number("first-page"),
      lastPage: number("last-page"),
      pagesPerTask: number("pages-per-task"),
      documentsPerPage: number("documents-per-page"),
      priority: number("priority"),
      maxAttempts: number("max-attempts"),
    });
    console.log(JSON.stringify({ created: res.created.length, skipped_ranges: res.skippedRanges }));
    return;
  }
  const idempotencyKey = values["idempotency-key"] ?? "";
  if (values.file !== undefined) {
    const parsed: unknown = JSON.parse(readFileSync(values.file, "utf8"));
    const list = Array.isArray(parsed) ? parsed : [parsed];
    const res = await tasks.createTasks({
      tasks: list.map((t) => fromJson(tasksV1.NewTaskSchema, t)),
      idempotencyKey,
    });
    for (const task of res.tasks)
      console.log(JSON.stringify({ task_id: task.taskId, status: task.status }));
    return;
  }
  const res = await tasks.createTask({
    searchParams,
    startPage: number("start-page"),
    maxDocuments: number("max-documents"),
    priority: number("priority"),
    maxAttempts: number("max-attempts"),
    idempotencyKey,
  });
  console.log(JSON.stringify({ task_id: res.taskId, status: res.status }));
}

function parseParams(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    if (at <= 0) throw new Error(`--param needs NAME=VALUE (got "${pair}")`);
    out[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return out;
}
