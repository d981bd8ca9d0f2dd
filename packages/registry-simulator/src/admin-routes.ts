import type { IncomingMessage, ServerResponse } from "node:http";
import { type FaultInjector, InvalidFaults } from "./faults.js";
import { BodyTooLarge, readBody, sendJson } from "./http-io.js";
import type { SimulatorStats } from "./stats.js";

export const adminPrefix = "/_simulator/";
const maxAdminBody = 16 * 1024;

export interface AdminContext {
  faults: FaultInjector;
  stats: () => SimulatorStats;
}

/** /_simulator/*: fault switches, counters and health, as JSON. Faults never apply here. */
export async function handleAdmin(
  request: IncomingMessage,
  response: ServerResponse,
  path: string,
  context: AdminContext,
): Promise<void> {
  const route = path.slice(adminPrefix.length);
  const method = request.method ?? "GET";
  const allow = (methods: string) => {
    response.setHeader("allow", methods);
    sendJson(response, 405, { error: `${method} is not allowed on ${path}; use ${methods}` });
  };
  switch (route) {
    case "health":
      return method === "GET" ? sendJson(response, 200, { status: "ok" }) : allow("GET");
    case "stats":
      return method === "GET" ? sendJson(response, 200, context.stats()) : allow("GET");
    case "faults":
      if (method === "GET") return sendJson(response, 200, context.faults.settings);
      if (method === "PUT") return putFaults(request, response, context.faults);
      return allow("GET, PUT");
    default:
      return sendJson(response, 404, { error: `no simulator endpoint ${path}` });
  }
}

async function putFaults(
  request: IncomingMessage,
  response: ServerResponse,
  faults: FaultInjector,
): Promise<void> {
  let update: unknown;
  try {
    update = JSON.parse((await readBody(request, maxAdminBody)).toString("utf8"));
  } catch (error) {
    const reason = error instanceof BodyTooLarge ? error.message : "the body is not valid JSON";
    return sendJson(response, 400, { error: reason });
  }
  try {
    sendJson(response, 200, faults.update(update));
  } catch (error) {
    if (!(error instanceof InvalidFaults)) throw error;
    sendJson(response, 400, { error: error.message });
  }
}
