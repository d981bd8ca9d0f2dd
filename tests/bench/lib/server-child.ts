// Used inside a server child: reports readiness, answers the parent's CPU and profiling
// requests, and stops on request or when the parent goes away.
import { writeFile } from "node:fs/promises";
import { Session } from "node:inspector/promises";
import { type ChildMessage, isParentMessage, type ParentMessage } from "./ipc.js";

export interface ServedProcess {
  url: string;
  port: number;
  stop(): Promise<void>;
}

function send(message: ChildMessage): void {
  process.send?.(message);
}

/** Starts the server with `start`, then serves the parent until told to stop. */
export async function serveParent(start: () => Promise<ServedProcess>): Promise<void> {
  if (process.send === undefined) {
    throw new Error("a benchmark server runs as a child of tests/bench/run.ts (no IPC channel)");
  }
  let served: ServedProcess;
  try {
    served = await start();
  } catch (error) {
    send({ type: "failed", error: error instanceof Error ? error.message : String(error) });
    process.exitCode = 1;
    process.disconnect();
    return;
  }
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= served.stop().finally(() => {
      if (process.connected) process.disconnect();
      // Whatever handle is still open (an idle client connection, say) must not keep a
      // benchmark server alive once it was told to stop.
      setTimeout(() => process.exit(), 3_000).unref();
    });
    return stopping;
  };
  let profiler: Session | undefined;

  process.on("disconnect", () => void stop());
  process.on("message", (raw: unknown) => {
    if (!isParentMessage(raw)) return;
    void answer(raw).catch((error: unknown) => {
      send({
        type: "error",
        id: raw.id,
        error: error instanceof Error ? error.message : String(error),
      });
    });
  });

  async function answer(message: ParentMessage): Promise<void> {
    switch (message.type) {
      case "cpu": {
        const { user, system } = process.cpuUsage();
        send({ type: "cpu", id: message.id, userUs: user, systemUs: system });
        return;
      }
      case "profile-start": {
        profiler = new Session();
        profiler.connect();
        await profiler.post("Profiler.enable");
        await profiler.post("Profiler.setSamplingInterval", { interval: message.intervalUs });
        await profiler.post("Profiler.start");
        send({ type: "done", id: message.id });
        return;
      }
      case "profile-stop": {
        if (profiler === undefined) throw new Error("no profile is running");
        const { profile } = await profiler.post("Profiler.stop");
        profiler.disconnect();
        profiler = undefined;
        await writeFile(message.file, JSON.stringify(profile));
        send({ type: "done", id: message.id });
        return;
      }
      case "stop": {
        send({ type: "done", id: message.id });
        await stop();
        return;
      }
    }
  }

  send({ type: "ready", url: served.url, port: served.port });
}
