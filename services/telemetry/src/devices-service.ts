import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { telemetryDevicesV1, telemetryV1 } from "@gate/contracts";
import {
  type ApiKeyStore,
  definePageToken,
  notFound,
  pageSize,
  withTransaction,
} from "@gate/runtime";
import type { Pool } from "pg";
import { checkDeviceAccess } from "./device-access.js";
import type { DeviceRow, DevicesStore } from "./devices-store.js";
import type { KnownDevices } from "./known-devices.js";
import { announceNextPage } from "./pagination.js";
import { isForeignKeyViolation } from "./pg-errors.js";
import type { UsersStore } from "./users-store.js";

const { DevicesService } = telemetryDevicesV1;

/** ListDevices pages one user's devices by (created_at, id). */
const devicesPage = definePageToken("telemetry-devices", {
  createdAt: "timestamp",
  id: "uuid",
  userId: "int",
});

export interface DevicesServiceDeps {
  pool: Pool;
  devices: DevicesStore;
  users: UsersStore;
  known: KnownDevices;
  keys: ApiKeyStore;
}

export function devicesServiceImpl(deps: DevicesServiceDeps): ServiceImpl<typeof DevicesService> {
  const { pool, devices, users, known, keys } = deps;
  const userMissing = (userId: number) => (error: unknown) => {
    if (isForeignKeyViolation(error)) throw notFound(`user ${userId}`);
    throw error;
  };
  return {
    async registerDevice(req) {
      const id = randomUUID();
      const { row, key } = await withTransaction(pool, async (tx) => {
        const row = await devices.insert(tx, id, req.userId);
        const { key } = await keys.mint({ role: "device", subject: id, label: `device ${id}` }, tx);
        return { row, key };
      }).catch(userMissing(req.userId));
      known.remember(id);
      return create(telemetryDevicesV1.RegisterDeviceResponseSchema, {
        id: row.id,
        userId: row.user_id,
        createdAt: timestampFromDate(row.created_at),
        apiKey: key,
      });
    },

    async getDevice(req, ctx) {
      const deviceId = req.deviceId.toLowerCase();
      checkDeviceAccess(ctx, deviceId, "device_id");
      const row = await devices.get(pool, deviceId);
      if (row === undefined) throw notFound(`device ${deviceId}`);
      return create(telemetryDevicesV1.GetDeviceResponseSchema, { device: toDevice(row) });
    },

    async listDevices(req, ctx) {
      const limit = pageSize("page_size", req.pageSize, { fallback: 100, max: 1000 });
      const cursor = devicesPage.decode(req.pageToken, { userId: req.userId });
      if (cursor === undefined && (await users.get(pool, req.userId)) === undefined) {
        throw notFound(`user ${req.userId}`);
      }
      const rows = await devices.listOfUser(pool, req.userId, cursor, limit + 1);
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      const nextPageToken =
        rows.length > limit && last !== undefined
          ? devicesPage.encode({
              createdAt: last.created_at_cursor,
              id: last.id,
              userId: req.userId,
            })
          : "";
      announceNextPage(ctx, nextPageToken);
      return create(telemetryDevicesV1.ListDevicesResponseSchema, {
        devices: page.map(toDevice),
        nextPageToken,
      });
    },

    async rebindDevice(req) {
      const deviceId = req.deviceId.toLowerCase();
      const row = await devices.rebind(pool, deviceId, req.userId).catch(userMissing(req.userId));
      if (row === undefined) throw notFound(`device ${deviceId}`);
      return create(telemetryDevicesV1.RebindDeviceResponseSchema, { device: toDevice(row) });
    },
  };
}

function toDevice(row: DeviceRow): telemetryV1.Device {
  return create(telemetryV1.DeviceSchema, {
    id: row.id,
    userId: row.user_id,
    createdAt: timestampFromDate(row.created_at),
  });
}
