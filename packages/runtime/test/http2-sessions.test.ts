import { EventEmitter } from "node:events";
import type { Http2Session } from "node:http2";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Http2Sessions } from "../src/server/http2-sessions.js";
import { captureLogs } from "./support/log-capture.js";

// The idle deadline of HTTP/2 sessions on fake timers: its timer stays armed while streams
// come and go, so what it does when it fires is what decides.

const idleMs = 300;

class FakeSession extends EventEmitter {
  closed = false;
  destroyed = false;
  close = vi.fn(() => {
    this.closed = true;
  });
  destroy = vi.fn(() => {
    this.destroyed = true;
  });

  /** A stream opened on this session; emit "close" on it to end it. */
  stream(): EventEmitter {
    const stream = Object.assign(new EventEmitter(), { session: this });
    this.emit("stream", stream);
    return stream;
  }
}

function watched(): { session: FakeSession; cuts: string[] } {
  const cuts: string[] = [];
  const sessions = new Http2Sessions(idleMs, captureLogs().logger, (stage) => cuts.push(stage));
  const session = new FakeSession();
  sessions.add(session as unknown as Http2Session);
  return { session, cuts };
}

/** Not closed until `ms` from now, closed (once) then. */
function closesAfter(session: FakeSession, ms: number): void {
  vi.advanceTimersByTime(ms - 1);
  expect(session.close).not.toHaveBeenCalled();
  vi.advanceTimersByTime(1);
  expect(session.close).toHaveBeenCalledOnce();
}

describe("HTTP/2 session idle deadline", () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("closes a session that never opens a stream once the limit is up", () => {
    const { session, cuts } = watched();
    closesAfter(session, idleMs);
    expect(cuts).toEqual(["http2 idle"]);
  });

  it("counts the limit from the close of the last stream, not from the first deadline", () => {
    const { session, cuts } = watched();
    vi.advanceTimersByTime(200);
    session.stream().emit("close");
    // The first deadline finds the session idle for 100 ms only.
    closesAfter(session, idleMs);
    expect(cuts).toEqual(["http2 idle"]);
  });

  it("leaves a session with an open stream alone, however long it stays open", () => {
    const { session } = watched();
    const first = session.stream();
    const second = session.stream();
    vi.advanceTimersByTime(idleMs * 4);
    first.emit("close");
    vi.advanceTimersByTime(idleMs * 4);
    expect(session.close).not.toHaveBeenCalled();
    second.emit("close");
    closesAfter(session, idleMs);
  });

  it("arms no deadline for a session that closed", () => {
    const { session, cuts } = watched();
    session.emit("close");
    vi.advanceTimersByTime(idleMs * 4);
    expect(session.close).not.toHaveBeenCalled();
    expect(cuts).toEqual([]);
  });
});
