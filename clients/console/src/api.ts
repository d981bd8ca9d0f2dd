import {
  type Client,
  Code,
  ConnectError,
  createClient,
  type Interceptor,
} from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import {
  clientsV1,
  reportsQueryV1,
  reportsReportV1,
  statsAnalyticsV1,
  statsProcessingV1,
  tasksV1,
  telemetryDevicesV1,
  telemetryMetricsV1,
  telemetryUsersV1,
} from "@gate/contracts";
import { storedKey } from "./session.js";

/** The public API of the platform that served this page, as typed clients. */
export interface Api {
  tasks: Client<typeof tasksV1.TasksService>;
  clients: Client<typeof clientsV1.ClientsService>;
  users: Client<typeof telemetryUsersV1.UsersService>;
  devices: Client<typeof telemetryDevicesV1.DevicesService>;
  metrics: Client<typeof telemetryMetricsV1.MetricsService>;
  processing: Client<typeof statsProcessingV1.ProcessingStatsService>;
  analytics: Client<typeof statsAnalyticsV1.AnalyticsService>;
  reports: Client<typeof reportsReportV1.ReportService>;
  queries: Client<typeof reportsQueryV1.QueryService>;
}

/**
 * Clients over the Connect protocol (JSON) on this page's origin. Every call carries the
 * session's key; a call the server answers UNAUTHENTICATED ends the session through
 * `onSignedOut`, whatever page made it.
 */
export function createApi(onSignedOut: (message: string) => void): Api {
  const withKey: Interceptor = (next) => async (req) => {
    const key = storedKey();
    if (key !== undefined) req.header.set("x-api-key", key);
    try {
      return await next(req);
    } catch (error) {
      reportIfSignedOut(error, onSignedOut);
      throw error;
    }
  };
  const transport = createConnectTransport({
    baseUrl: window.location.origin,
    interceptors: [withKey],
  });
  return {
    tasks: createClient(tasksV1.TasksService, transport),
    clients: createClient(clientsV1.ClientsService, transport),
    users: createClient(telemetryUsersV1.UsersService, transport),
    devices: createClient(telemetryDevicesV1.DevicesService, transport),
    metrics: createClient(telemetryMetricsV1.MetricsService, transport),
    processing: createClient(statsProcessingV1.ProcessingStatsService, transport),
    analytics: createClient(statsAnalyticsV1.AnalyticsService, transport),
    reports: createClient(reportsReportV1.ReportService, transport),
    queries: createClient(reportsQueryV1.QueryService, transport),
  };
}

/** Calls `onSignedOut` when the error says the key is no longer accepted. */
function reportIfSignedOut(error: unknown, onSignedOut: (message: string) => void): void {
  if (error instanceof ConnectError && error.code === Code.Unauthenticated) {
    onSignedOut(signedOutMessage(error));
  }
}

/** Said on the sign-in screen when a session's key is refused. */
export function signedOutMessage(error: unknown): string {
  return `The server no longer accepts this key: ${errorMessage(error)}`;
}

/** What to show for a failed call: the server's message, never a stack trace. */
export function errorMessage(error: unknown): string {
  if (error instanceof ConnectError) {
    if (error.code === Code.Unavailable && /fetch|network/i.test(error.rawMessage))
      return "The server cannot be reached. Is Gate running?";
    return error.rawMessage || Code[error.code];
  }
  return error instanceof Error ? error.message : String(error);
}

/** True when the call was given up on purpose (the page closed, live updates paused). */
export function isAbort(error: unknown): boolean {
  return (
    (error instanceof ConnectError && error.code === Code.Canceled) ||
    (error instanceof DOMException && error.name === "AbortError")
  );
}
