import { Code, ConnectError } from "@connectrpc/connect";

/** What an HTTP/1.1 GET of a URL answered: its status and content type, or the error. */
export type HttpProbe = (url: string) => Promise<{ status: number; contentType: string }>;

/**
 * One line that says what is wrong with `apiUrl`, from the error a call to it ended with,
 * or undefined when the error is not about reaching a Gate server (a refused key, say).
 * Fit for an operator who typed the URL: no stack, no OpenSSL internals.
 */
export async function diagnoseServer(
  apiUrl: string,
  error: unknown,
  probe: HttpProbe = probeOverHttp1,
): Promise<string | undefined> {
  if (!(error instanceof ConnectError)) return undefined;
  const url = new URL(apiUrl);
  const cause = networkCause(error);
  switch (cause) {
    case "ECONNREFUSED":
      return `nothing listens at ${url.origin}`;
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `${url.hostname} does not resolve to an address (DNS)`;
    case "ETIMEDOUT":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return `${url.host} cannot be reached from here (${cause})`;
  }
  if (cause?.startsWith("ERR_SSL_") === true || cause === "EPROTO") {
    return url.protocol === "https:"
      ? `${url.origin} does not speak TLS — try http://${url.host}`
      : `TLS failed with ${url.origin} (${cause})`;
  }
  if (cause === "ECONNRESET" && url.protocol === "http:")
    return `${url.origin} closed the connection: not a Gate server, or one that wants TLS (try https://${url.host})`;
  if (error.code === Code.DeadlineExceeded) return `no answer from ${url.origin} in time`;
  // The server answered, but not as Gate does: a gRPC server without Gate's services, or
  // something that is not gRPC at all. An HTTP/1.1 request shows what it is.
  if (error.code === Code.Unimplemented || cause?.startsWith("ERR_HTTP2_") === true) {
    const answer = await probe(`${url.origin}${url.pathname.replace(/\/$/, "")}/health`).catch(
      () => undefined,
    );
    if (answer === undefined) return `${url.origin} is not a Gate server (it does not speak gRPC)`;
    if (answer.status === 200 && answer.contentType === "application/json")
      return `${url.origin} answers HTTP/1.1 but not gRPC over HTTP/2 (a proxy in between?)`;
    const type = answer.contentType === "" ? "no content type" : answer.contentType;
    return `${url.origin} is not a Gate server (answered HTTP ${answer.status} ${type})`;
  }
  return cause === undefined ? undefined : `${url.origin} is unreachable (${cause})`;
}

/** The Node error code under a transport error (ECONNREFUSED, ERR_SSL_…), if any. */
function networkCause(error: ConnectError): string | undefined {
  for (let at: unknown = error.cause; at instanceof Error; at = at.cause) {
    const code = (at as NodeJS.ErrnoException).code;
    if (typeof code === "string") return code;
  }
  return undefined;
}

async function probeOverHttp1(url: string): Promise<{ status: number; contentType: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000), redirect: "manual" });
  await res.body?.cancel();
  return {
    status: res.status,
    contentType: (res.headers.get("content-type") ?? "").split(";")[0]?.trim() ?? "",
  };
}
