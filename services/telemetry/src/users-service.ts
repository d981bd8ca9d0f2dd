import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { telemetryUsersV1, telemetryV1 } from "@gate/contracts";
import {
  alreadyExists,
  definePageToken,
  failedPrecondition,
  notFound,
  pageSize,
} from "@gate/runtime";
import type { Pool } from "pg";
import type { DevicesStore } from "./devices-store.js";
import { announceNextPage } from "./pagination.js";
import { isForeignKeyViolation, isUniqueViolation } from "./pg-errors.js";
import type { UserRow, UsersStore } from "./users-store.js";

const { UsersService } = telemetryUsersV1;

/** ListUsers pages by id. */
const usersPage = definePageToken("telemetry-users", { id: "int" });

/**
 * The REST status of a duplicate email: seed 002's clients expect 400 there, while gRPC
 * callers get ALREADY_EXISTS. The in-process REST gateway reads it from the error's
 * metadata; Envoy's REST routes read it from the response headers (a Lua filter, see
 * deploy/envoy/rest-status.ts), since the transcoder's answer carries the headers, not
 * the trailers, of the gRPC response.
 */
const restStatusHeader = "x-gate-http-status";

export interface UsersServiceDeps {
  pool: Pool;
  users: UsersStore;
  devices: DevicesStore;
}

export function usersServiceImpl(deps: UsersServiceDeps): ServiceImpl<typeof UsersService> {
  const { pool, users, devices } = deps;
  const refuseDuplicateEmail =
    (ctx: HandlerContext) =>
    (error: unknown): never => {
      if (isUniqueViolation(error, "users_email_key")) {
        const duplicate = alreadyExists("email: a user with this email already exists");
        duplicate.metadata.set(restStatusHeader, "400");
        ctx.responseHeader.set(restStatusHeader, "400");
        throw duplicate;
      }
      if (isUniqueViolation(error, "users_user_uuid_key")) {
        throw alreadyExists("user_uuid: a user with this user_uuid already exists");
      }
      throw error;
    };
  return {
    async createUser(req, ctx) {
      const row = await users
        .insert(pool, {
          userUuid: req.userUuid === "" ? randomUUID() : req.userUuid.toLowerCase(),
          name: req.name.trim(),
          email: req.email,
          age: req.age ?? null,
          gender: req.gender ?? null,
          country: req.country ?? null,
          address: req.address ?? null,
          phone: req.phone ?? null,
          registrationTs:
            req.registrationTs === undefined ? null : timestampDate(req.registrationTs),
        })
        .catch(refuseDuplicateEmail(ctx));
      return create(telemetryUsersV1.CreateUserResponseSchema, { user: toUser(row) });
    },

    async getUser(req) {
      const row = await users.get(pool, req.userId);
      if (row === undefined) throw notFound(`user ${req.userId}`);
      return create(telemetryUsersV1.GetUserResponseSchema, { user: toUser(row) });
    },

    async listUsers(req, ctx) {
      const limit = pageSize("page_size", req.pageSize, { fallback: 100, max: 1000 });
      const after = usersPage.decode(req.pageToken)?.id ?? 0;
      const rows = await users.list(pool, after, limit + 1);
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      const nextPageToken =
        rows.length > limit && last !== undefined ? usersPage.encode({ id: last.id }) : "";
      announceNextPage(ctx, nextPageToken);
      return create(telemetryUsersV1.ListUsersResponseSchema, {
        users: page.map(toUser),
        nextPageToken,
      });
    },

    async updateUser(req, ctx) {
      const row = await users
        .update(pool, req.userId, {
          name: req.name?.trim(),
          email: req.email,
          age: req.age,
          gender: req.gender,
          country: req.country,
          address: req.address,
          phone: req.phone,
        })
        .catch(refuseDuplicateEmail(ctx));
      if (row === undefined) throw notFound(`user ${req.userId}`);
      return create(telemetryUsersV1.UpdateUserResponseSchema, { user: toUser(row) });
    },

    async deleteUser(req) {
      if ((await devices.countOfUser(pool, req.userId)) > 0) {
        throw failedPrecondition(
          `user_id: user ${req.userId} still has devices; re-bind them to another user first`,
        );
      }
      const deleted = await users.delete(pool, req.userId).catch((error: unknown) => {
        if (isForeignKeyViolation(error)) {
          throw failedPrecondition(
            `user_id: user ${req.userId} has devices or signal events and cannot be deleted`,
          );
        }
        throw error;
      });
      if (!deleted) throw notFound(`user ${req.userId}`);
      return create(telemetryUsersV1.DeleteUserResponseSchema, {});
    },

    async *exportUsers(req) {
      const chunk = req.chunkSize === 0 ? 1000 : req.chunkSize;
      let after = 0;
      for (;;) {
        const rows = await users.list(pool, after, chunk);
        if (rows.length === 0) return;
        yield create(telemetryUsersV1.ExportUsersResponseSchema, { users: rows.map(toUser) });
        after = (rows.at(-1) as UserRow).id;
        if (rows.length < chunk) return;
      }
    },
  };
}

export function toUser(row: UserRow): telemetryV1.User {
  return create(telemetryV1.UserSchema, {
    id: row.id,
    userUuid: row.user_uuid,
    name: row.name,
    email: row.email,
    ...(row.age === null ? {} : { age: row.age }),
    ...(row.gender === null ? {} : { gender: row.gender }),
    ...(row.country === null ? {} : { country: row.country }),
    ...(row.address === null ? {} : { address: row.address }),
    ...(row.phone === null ? {} : { phone: row.phone }),
    registrationTs: timestampFromDate(row.registration_ts),
    registeredAt: timestampFromDate(row.registered_at),
  });
}
