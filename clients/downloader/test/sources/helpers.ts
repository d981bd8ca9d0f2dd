import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { ProviderError } from "../../src/sources/index.js";

/** Midnight UTC of a "yyyy-mm-dd" date, as the source reports registry dates. */
export function utc(isoDate: string): Date {
  return new Date(`${isoDate}T00:00:00Z`);
}

/** The ProviderError a promise rejects with; fails the test if it resolves or throws else. */
export async function providerError(promise: Promise<unknown>): Promise<ProviderError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ProviderError) return error;
    throw error;
  }
  throw new Error("expected a ProviderError, but the call succeeded");
}

export type Handler = (request: IncomingMessage, response: ServerResponse) => void;

/**
 * A tiny server that answers the n-th request with the n-th handler (the last one repeats),
 * for pages and statuses the simulator does not produce.
 */
export async function scriptedServer(...handlers: Handler[]) {
  const seen: string[] = [];
  const server = createServer((request, response) => {
    seen.push(`${request.method} ${request.url}`);
    request.resume();
    const handler = handlers[Math.min(seen.length, handlers.length) - 1];
    handler?.(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Answers with an HTML page. */
export function html(body: string, status = 200, headers: Record<string, string> = {}): Handler {
  return (_request, response) => {
    response.writeHead(status, { "content-type": "text/html; charset=utf-8", ...headers });
    response.end(body);
  };
}
