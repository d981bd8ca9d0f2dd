import type { Client } from "@connectrpc/connect";
import type { telemetrySignalsV1, telemetryUsersV1 } from "@gate/contracts";

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

/** One telemetry_events row as the OLAP tables take it. */
export interface OlapEvent {
  id: string;
  user_id: number;
  prosthesis_type: string;
  muscle_group: string;
  signal_frequency: number;
  signal_duration: number;
  signal_amplitude: number;
  event_timestamp: number;
  saved_ts: number;
}

/** What an import reads: telemetry's exports, never its tables. */
export interface TelemetrySource {
  users(): AsyncIterable<OlapUser[]>;
  /** Events taken within [startSec, endSec), in chunks. */
  events(startSec: number, endSec: number): AsyncIterable<OlapEvent[]>;
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
    async *events(startSec, endSec) {
      const request = {
        start: { seconds: BigInt(startSec) },
        end: { seconds: BigInt(endSec) },
        chunkSize,
      };
      for await (const chunk of clients.signals.exportSignalEvents(request)) {
        yield chunk.events.map((e) => ({
          id: e.id.toString(),
          user_id: e.userId,
          prosthesis_type: e.prosthesisType,
          muscle_group: e.muscleGroup,
          signal_frequency: e.signalFrequency,
          signal_duration: e.signalDuration,
          signal_amplitude: e.signalAmplitude,
          // ClickHouse's DateTime keeps whole seconds: the sub-second part is dropped.
          event_timestamp: seconds(e.eventTimestamp),
          saved_ts: seconds(e.savedTs),
        }));
      }
    },
  };
}
