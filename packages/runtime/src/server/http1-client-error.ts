import { type ServerResponse, STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import { Code } from "@connectrpc/connect";
import type { Logger } from "../log.js";
import { connectErrorBody, connectErrorContentType } from "./connect-error-body.js";
import { isPeerGoneCode } from "./request-failures.js";

type ParserError = Error & { code?: string; reason?: string };

/**
 * Node's HTTP/1.1 parser refused what a client sent (garbage, an oversized header block,
 * a bad chunk): answer with a status and the Connect error JSON, as Node would answer with an
 * empty body, and log the parser's reason at warn. Never the raw bytes: they are the payload.
 */
export function answerMalformedHttp1(error: ParserError, socket: Socket, logger: Logger): void {
  // The peer went away: nothing to answer, nothing to warn about.
  if (isPeerGoneCode(error.code)) {
    logger.debug({ err: error.code }, "connection reset by the client");
    socket.destroy();
    return;
  }
  const { status, code, message } = refusalFor(error);
  logger.warn(
    { protocol: "http1", status, parserError: error.code, reason: reasonOf(error) },
    message,
  );
  // Node's own rule: answer only while no response of this connection has started.
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
  if (socket.writable && (inFlight === undefined || !inFlight.headersSent)) {
    const body = connectErrorBody(code, message);
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
        `Content-Type: ${connectErrorContentType}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        "Connection: close\r\n\r\n" +
        body,
    );
  }
  socket.destroySoon();
}

function refusalFor(error: ParserError): { status: number; code: Code; message: string } {
  switch (error.code) {
    case "HPE_HEADER_OVERFLOW":
      return {
        status: 431,
        code: Code.ResourceExhausted,
        message: "request headers are larger than the limit",
      };
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return { status: 408, code: Code.DeadlineExceeded, message: "the request took too long" };
    default:
      return {
        status: 400,
        code: Code.InvalidArgument,
        message: `malformed HTTP/1.1 request: ${reasonOf(error)}`,
      };
  }
}

function reasonOf(error: ParserError): string {
  // The parser's reason is a fixed phrase ("Invalid method encountered"), never request bytes.
  return error.reason ?? error.code ?? "unreadable request";
}
