/**
 * How long a connection may take at each stage, and how many may be open at once. A client
 * that trickles bytes, never finishes its headers or body, or holds a connection it does not
 * use would otherwise keep a socket and its memory forever.
 */
export interface ConnectionLimits {
  /** From accept until the first request's headers (or the HTTP/2 preface) are complete. */
  headersTimeoutMs: number;
  /** From an HTTP/1.1 request's headers until its body is complete. */
  requestTimeoutMs: number;
  /** How long an HTTP/1.1 connection may wait, after a response, for the next request. */
  keepAliveTimeoutMs: number;
  /**
   * How long an HTTP/2 connection may have no open stream. A connection with a stream open
   * (a lease or watch stream, however quiet) is never idle.
   */
  http2IdleTimeoutMs: number;
  /** Open connections per process; further connections are closed as soon as accepted. */
  maxConnections: number;
  /**
   * Streams one HTTP/2 connection may have open at once (its SETTINGS_MAX_CONCURRENT_STREAMS);
   * a client opening more gets them refused, so one connection cannot start unbounded calls.
   */
  http2MaxConcurrentStreams: number;
}

export const defaultConnectionLimits: Readonly<ConnectionLimits> = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  // Longer than the 60 s idle timeout of common load balancers, so they close first and
  // never send a request on a connection this side is closing.
  keepAliveTimeoutMs: 65_000,
  http2IdleTimeoutMs: 65_000,
  maxConnections: 10_000,
  http2MaxConcurrentStreams: 1_000,
};
