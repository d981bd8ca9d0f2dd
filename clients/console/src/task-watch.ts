import { Code, ConnectError } from "@connectrpc/connect";
import type { tasksV1 } from "@gate/contracts";
import type { Api } from "./api.js";
import { ResumableStream, type WatchState } from "./resumable-stream.js";

export interface TaskWatchOptions {
  api: Api;
  /** Every task change, in commit order, exactly once across reconnects. */
  onChange(change: tasksV1.WatchTasksResponse): void;
  /**
   * The stream is subscribed (first time, or after the server forgot our place): load the
   * current state now; changes from here on follow through onChange.
   */
  onSubscribed(resumed: boolean): void;
  onState(state: WatchState): void;
  /** The key was refused: the session is over. */
  onSignedOut(error: unknown): void;
}

/**
 * The page's one long-lived stream: WatchTasks, resumed after the last change seen (so
 * nothing is missed or repeated). When the server no longer remembers that place
 * (OUT_OF_RANGE), the page reloads its state from a fresh stream.
 */
export class TaskWatch extends ResumableStream<tasksV1.WatchTasksResponse> {
  constructor({ api, onChange, onSubscribed, onState, onSignedOut }: TaskWatchOptions) {
    // Whether the connection being read continues an earlier one.
    let resumed = false;
    super({
      open: (resumeToken, signal) => {
        resumed = resumeToken !== "";
        return api.tasks.watchTasks({ resumeToken }, { signal });
      },
      cursorOf: (message) => message.resumeToken,
      onMessage: (message) => {
        // The server's first message on every stream: subscribed, changes follow.
        if (message.change === "watching") onSubscribed(resumed);
        else onChange(message);
      },
      onState,
      onError: (error) => {
        if (!(error instanceof ConnectError)) return "retry";
        if (error.code === Code.Unauthenticated) {
          onSignedOut(error);
          return "stop";
        }
        // Our place is forgotten: start over from now and reload what the page shows.
        return error.code === Code.OutOfRange ? "restart" : "retry";
      },
    });
  }
}
