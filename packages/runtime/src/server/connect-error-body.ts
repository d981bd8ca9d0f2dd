import type { Code } from "@connectrpc/connect";
import { codeLabel } from "../errors.js";

/**
 * The Connect protocol's error JSON (`{"code":"invalid_argument","message":"…"}`), for the
 * answers given before any RPC handler runs: unknown method, wrong content type or HTTP
 * method, malformed or oversized HTTP requests. Clients then see one error shape everywhere.
 */
export function connectErrorBody(code: Code, message: string): string {
  return JSON.stringify({ code: codeLabel(code), message });
}

export const connectErrorContentType = "application/json";
