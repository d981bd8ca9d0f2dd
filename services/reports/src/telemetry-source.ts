import type { Client } from "@connectrpc/connect";
import type { telemetrySignalsV1, telemetryUsersV1 } from "@gate/contracts";
import { type EventColumns, eventColumnsOf } from "./event-columns.js";

/** One users row as the OLAP tables take it (JSONEachRow; times in epoch seconds). */
export interface OlapUser {
  user_id: number;
  user_uuid: string;
  name: string;
  email: string;
  age: number | null;
  gender: string | null;
  country: string | null;
  address: string | null;
  phone: string | null;
  registration_ts: number;
  registered_at: number;
}

/** What an import reads: telemetry's exports, never its tables. */
export interface TelemetrySource {
  users(): AsyncIterable<OlapUser[]>;
  /**
   * Events taken within [startSec, endSec), in chunks; with `savedSinceSec`, only those
   * telemetry stored at or after that time.
   */
  events(window: EventWindow): AsyncIterable<EventColumns>;
}

export interface EventWindow {
  startSec: number;
  endSec: number;
  savedSinceSec?: number;
}

export interface TelemetryClients {
  users: Client<typeof telemetryUsersV1.UsersService>;
  signals: Client<typeof telemetrySignalsV1.SignalsService>;
}

const seconds = (ts: { seconds: bigint } | undefined) =>
  ts === undefined ? 0 : Number(ts.seconds);

/** The telemetry service's ExportUsers and ExportSignalEvents streams. */
export function telemetrySource(clients: TelemetryClients, chunkSize: number): TelemetrySource {
  return {
    async *users() {
      for await (const chunk of clients.users.exportUsers({ chunkSize: 10_000 })) {
        yield chunk.users.map((u) => ({
          user_id: u.id,
          user_uuid: u.userUuid,
          name: u.name,
          email: u.email,
          age: u.age ?? null,
          gender: u.gender ?? null,
          country: u.country ?? null,
          address: u.address ?? null,
          phone: u.phone ?? null,
          registration_ts: seconds(u.registrationTs),
          registered_at: seconds(u.registeredAt),
        }));
      }
    },
    async *events(window) {
      const request = {
        start: { seconds: BigInt(window.startSec) },
        end: { seconds: BigInt(window.endSec) },
        ...(window.savedSinceSec === undefined
          ? {}
          : { savedSince: { seconds: BigInt(window.savedSinceSec) } }),
        chunkSize,
        columns: true,
      };
      for await (const chunk of clients.signals.exportSignalEvents(request)) {
        yield eventColumnsOf(chunk);
      }
    },
  };
}
