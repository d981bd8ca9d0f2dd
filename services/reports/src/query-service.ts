import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { reportsQueryV1, reportsV1 } from "@gate/contracts";
import { definePageToken, invalidArgument, notFound, pageSize } from "@gate/runtime";
import type { GroupRow, ReportQueries } from "./report-queries.js";
import { isoOfSeconds, readPeriod } from "./time-text.js";

const { QueryService } = reportsQueryV1;

/** ListUserEvents pages by (event time, id) within one user. */
const userEventsPage = definePageToken("reports-user-events", {
  user: "int",
  ts: "int",
  id: "string",
});

function muscleGroups(rows: readonly GroupRow[]): reportsQueryV1.MuscleGroupCount[] {
  const total = rows.reduce((sum, row) => sum + Number(row.events), 0);
  return rows.map((row) =>
    create(reportsQueryV1.MuscleGroupCountSchema, {
      muscleGroup: row.key,
      eventsCount: BigInt(row.events),
      share: total === 0 ? 0 : Number(row.events) / total,
    }),
  );
}

/** Seed 003's eight analytical queries. */
export function queryServiceImpl(queries: ReportQueries): ServiceImpl<typeof QueryService> {
  const requireUser = async (userId: number) => {
    const profile = await queries.profile(userId);
    if (profile === undefined) throw notFound(`user ${userId}`);
    return profile;
  };
  return {
    async countUsers() {
      const userCount = BigInt(await queries.countUsers());
      return create(reportsQueryV1.CountUsersResponseSchema, { userCount });
    },

    async countEvents(req) {
      const count = await queries.countEvents(readPeriod(req.startTs, req.endTs));
      return create(reportsQueryV1.CountEventsResponseSchema, { eventsCount: BigInt(count) });
    },

    async listUserEvents(req) {
      const period = readPeriod(req.startTs, req.endTs);
      const limit = pageSize("page_size", req.pageSize, { fallback: 100, max: 10_000 });
      const cursor = userEventsPage.decode(req.pageToken, { user: req.userId });
      if (cursor !== undefined && !/^-?\d{1,19}$/.test(cursor.id)) {
        throw invalidArgument("page_token", "is not a token this server issued (id)");
      }
      await requireUser(req.userId);
      const after = cursor === undefined ? undefined : { ts: cursor.ts, id: BigInt(cursor.id) };
      const rows = await queries.userEvents(req.userId, period, after, limit + 1);
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return create(reportsQueryV1.ListUserEventsResponseSchema, {
        events: page.map((row) =>
          create(reportsV1.ReportEventSchema, {
            id: BigInt(row.event_id),
            userId: row.user_id,
            prosthesisType: row.prosthesis_type,
            muscleGroup: row.muscle_group,
            signalFrequency: row.signal_frequency,
            signalDuration: row.signal_duration,
            signalAmplitude: row.signal_amplitude,
            eventTimestamp: isoOfSeconds(row.ts),
            savedTs: isoOfSeconds(row.saved),
          }),
        ),
        nextPageToken:
          rows.length > limit && last !== undefined
            ? userEventsPage.encode({ user: req.userId, ts: last.ts, id: last.event_id })
            : "",
      });
    },

    async countEventsByMonth(req) {
      const rows = await queries.eventsByMonth(readPeriod(req.startTs, req.endTs));
      return create(reportsQueryV1.CountEventsByMonthResponseSchema, {
        months: rows.map((row) =>
          create(reportsQueryV1.MonthCountSchema, {
            month: `${Math.floor(row.month / 100)}-${String(row.month % 100).padStart(2, "0")}`,
            eventsCount: BigInt(row.events),
          }),
        ),
      });
    },

    async getProsthesisAverages(req) {
      const rows = await queries.byProsthesis(readPeriod(req.startTs, req.endTs));
      return create(reportsQueryV1.GetProsthesisAveragesResponseSchema, {
        prosthesisTypes: rows.map((row) =>
          create(reportsQueryV1.ProsthesisAveragesSchema, {
            prosthesisType: row.key,
            eventsCount: BigInt(row.events),
            avgAmplitude: row.amplitude,
            avgFrequency: row.frequency,
          }),
        ),
      });
    },

    async getUserDetails(req) {
      const period = readPeriod(req.startTs, req.endTs);
      const profile = await requireUser(req.userId);
      const [totals, groups] = await Promise.all([
        queries.totalsOfUser(req.userId, period),
        queries.byMuscleGroup(period, req.userId),
      ]);
      return create(reportsQueryV1.GetUserDetailsResponseSchema, {
        user: create(reportsQueryV1.UserProfileSchema, {
          userId: profile.user_id,
          userUuid: profile.user_uuid,
          name: profile.name,
          email: profile.email,
          ...(profile.age === null ? {} : { age: profile.age }),
          ...(profile.gender === null ? {} : { gender: profile.gender }),
          ...(profile.country === null ? {} : { country: profile.country }),
          registrationTs: isoOfSeconds(profile.registration_ts),
        }),
        totalEvents: BigInt(totals?.events ?? 0),
        totalDuration: Number(totals?.duration ?? 0),
        avgAmplitude: totals?.amplitude ?? 0,
        avgFrequency: totals?.frequency ?? 0,
        firstEventTs: totals === undefined ? "" : isoOfSeconds(totals.first_ts),
        lastEventTs: totals === undefined ? "" : isoOfSeconds(totals.last_ts),
        muscleGroups: muscleGroups(groups),
      });
    },

    async listMostActiveUsers(req) {
      const limit = pageSize("limit", req.limit, { fallback: 10, max: 1000 });
      const rows = await queries.mostActive(limit, readPeriod(req.startTs, req.endTs));
      return create(reportsQueryV1.ListMostActiveUsersResponseSchema, {
        users: rows.map((row) =>
          create(reportsQueryV1.ActiveUserSchema, {
            userId: row.user_id,
            userName: row.user_name,
            eventsCount: BigInt(row.events),
            totalDuration: Number(row.duration),
          }),
        ),
      });
    },

    async getMuscleGroupDistribution(req) {
      const rows = await queries.byMuscleGroup(readPeriod(req.startTs, req.endTs));
      return create(reportsQueryV1.GetMuscleGroupDistributionResponseSchema, {
        muscleGroups: muscleGroups(rows),
      });
    },
  };
}
