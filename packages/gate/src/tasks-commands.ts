import { readFileSync } from "node:fs";
import { type DescService, fromJson } from "@bufbuild/protobuf";
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { tasksV1 } from "@gate/contracts";
import { EnvReader, type EnvVars } from "@gate/runtime";
import { Command, InvalidArgumentError, Option } from "commander";

export interface ServerOptions {
  apiUrl?: string;
  apiKey?: string;
}

/**
 * `gate tasks …`: an operator's client of the tasks service, over the Connect protocol. It
 * finds the server the way the server finds its port: GATE_API_URL, else API_HOST and
 * API_PORT from the environment or .env.
 */
export function tasksCommand(env: EnvVars): Command {
  const tasks = new Command("tasks").description(
    "create and plan download tasks on a running Gate; answers are printed as JSON",
  );

  const create = withServerOptions(tasks.command("create"), env)
    .description("create one task for a search, or many from a JSON file")
    .addOption(searchParamOption())
    .addOption(new Option("--file <path>", "a JSON array of tasks (CreateTasks shape) or one task"))
    .addOption(integerOption("--start-page <n>", "first result page", 1))
    .addOption(
      integerOption("--max-documents <n>", "documents to download; 0: the server's default", 0),
    )
    .addOption(integerOption("--priority <n>", "higher runs first", 0))
    .addOption(
      integerOption("--max-attempts <n>", "attempts before failing; 0: the server's default", 0),
    )
    .addOption(
      new Option("--idempotency-key <key>", "repeat a create safely: same key, same tasks"),
    );
  create.action(
    async (options: ServerOptions & TaskOptions & { file?: string; idempotencyKey?: string }) => {
      const { client, reach } = tasksClient(options, env);
      const idempotencyKey = options.idempotencyKey ?? "";
      if (options.file !== undefined) {
        const parsed: unknown = JSON.parse(readFileSync(options.file, "utf8"));
        const list = Array.isArray(parsed) ? parsed : [parsed];
        const res = await reach(
          client.createTasks({
            tasks: list.map((t) => fromJson(tasksV1.NewTaskSchema, t)),
            idempotencyKey,
          }),
        );
        for (const task of res.tasks)
          console.log(JSON.stringify({ task_id: task.taskId, status: task.status }));
        return;
      }
      const res = await reach(
        client.createTask({
          searchParams: options.param,
          startPage: options.startPage,
          maxDocuments: options.maxDocuments,
          priority: options.priority,
          maxAttempts: options.maxAttempts,
          idempotencyKey,
        }),
      );
      console.log(JSON.stringify({ task_id: res.taskId, status: res.status }));
    },
  );

  withServerOptions(tasks.command("plan"), env)
    .description("split the result pages of a search into tasks; ranges planned before are skipped")
    .addOption(searchParamOption())
    .addOption(integerOption("--first-page <n>", "first result page", 1))
    .addOption(integerOption("--last-page <n>", "last result page").makeOptionMandatory())
    .addOption(integerOption("--pages-per-task <n>", "pages in each task").makeOptionMandatory())
    .addOption(
      integerOption(
        "--documents-per-page <n>",
        "documents the registry lists per page",
      ).makeOptionMandatory(),
    )
    .addOption(integerOption("--priority <n>", "higher runs first", 0))
    .addOption(
      integerOption("--max-attempts <n>", "attempts before failing; 0: the server's default", 0),
    )
    .action(
      async (
        options: ServerOptions &
          TaskOptions & { firstPage: number; lastPage: number; pagesPerTask: number } & {
            documentsPerPage: number;
          },
      ) => {
        const { client, reach } = tasksClient(options, env);
        const res = await reach(
          client.planSearch({
            searchParams: options.param,
            firstPage: options.firstPage,
            lastPage: options.lastPage,
            pagesPerTask: options.pagesPerTask,
            documentsPerPage: options.documentsPerPage,
            priority: options.priority,
            maxAttempts: options.maxAttempts,
          }),
        );
        console.log(
          JSON.stringify({ created: res.created.length, skipped_ranges: res.skippedRanges }),
        );
      },
    );
  return tasks;
}

interface TaskOptions {
  param: Record<string, string>;
  startPage: number;
  maxDocuments: number;
  priority: number;
  maxAttempts: number;
}

export function withServerOptions(command: Command, env: EnvVars): Command {
  const fallback = shownDefaultApiUrl(env);
  return command
    .addOption(
      new Option("--api-url <url>", "the Gate server")
        .env("GATE_API_URL")
        .default(fallback, `${fallback ?? "?"}, from API_HOST and API_PORT`),
    )
    .addOption(new Option("--api-key <key>", "an operator API key").env("GATE_API_KEY"));
}

/**
 * The URL of the server that `gate start` runs with the same settings. A wildcard listen
 * address is reached on the loopback. A bad API_PORT fails the command, as it fails the
 * server.
 */
export function defaultApiUrl(env: EnvVars): string {
  const reader = new EnvReader(env);
  const host = reader.string("API_HOST", "127.0.0.1");
  const port = reader.port("API_PORT", 8080);
  reader.done();
  const reachable = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
  return `http://${reachable.includes(":") ? `[${reachable}]` : reachable}:${port}`;
}

/** The default for --help; a bad API_PORT shows no default here and fails the command. */
function shownDefaultApiUrl(env: EnvVars): string | undefined {
  try {
    return defaultApiUrl(env);
  } catch {
    return undefined;
  }
}

function tasksClient(options: ServerOptions, env: EnvVars) {
  return serviceClient(tasksV1.TasksService, options, env);
}

/**
 * A service's client over the Connect protocol, and `reach`, which turns a call that finds
 * nothing listening into one plain line naming the address and where it came from.
 */
export function serviceClient<S extends DescService>(
  service: S,
  options: ServerOptions,
  env: EnvVars,
  /** "2" (cleartext HTTP/2) for server streams, which the server ends badly over HTTP/1.1. */
  httpVersion: "1.1" | "2" = "1.1",
): {
  client: Client<S>;
  reach: <T>(call: Promise<T>) => Promise<T>;
} {
  const { apiKey } = options;
  const baseUrl = options.apiUrl ?? defaultApiUrl(env);
  const transport = createConnectTransport({
    baseUrl,
    httpVersion,
    interceptors: [
      (next) => (req) => {
        if (apiKey !== undefined) req.header.set("x-api-key", apiKey);
        return next(req);
      },
    ],
  });
  return {
    client: createClient(service, transport),
    reach: <T>(call: Promise<T>) =>
      call.catch((error: unknown) => {
        throw unreachableServer(baseUrl, error) ?? error;
      }),
  };
}

/** The usual first mistake, a platform that is not running there, said plainly. */
function unreachableServer(baseUrl: string, error: unknown): Error | undefined {
  let cause: unknown = error;
  while (cause instanceof Error && (cause as NodeJS.ErrnoException).code !== "ECONNREFUSED")
    cause = cause.cause;
  if (cause === undefined || !(cause instanceof Error)) return undefined;
  return new Error(
    `nothing listens at ${new URL(baseUrl).origin} (is the platform running? the address comes from --api-url, GATE_API_URL or API_HOST/API_PORT)`,
  );
}

function searchParamOption(): Option {
  return new Option("--param <name=value>", "a search parameter; repeat for more")
    .argParser((pair: string, previous: Record<string, string>) => {
      const at = pair.indexOf("=");
      if (at <= 0) throw new InvalidArgumentError(`needs NAME=VALUE (got "${pair}")`);
      return { ...previous, [pair.slice(0, at)]: pair.slice(at + 1) };
    })
    .default({}, "none");
}

export function integerOption(flags: string, description: string, fallback?: number): Option {
  const option = new Option(flags, description).argParser((raw: string) => {
    if (!/^-?\d+$/.test(raw.trim())) throw new InvalidArgumentError("must be an integer");
    return Number(raw);
  });
  return fallback === undefined ? option : option.default(fallback);
}
