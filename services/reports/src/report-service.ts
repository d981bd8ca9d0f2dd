import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { reportsReportV1, reportsV1 } from "@gate/contracts";
import { notFound } from "@gate/runtime";
import type { GroupRow, ReportQueries } from "./report-queries.js";
import { readPeriod } from "./time-text.js";

/** One prosthesis type's sums as seed 003's report writes them. */
function prosthesisStats(row: GroupRow): reportsV1.ProsthesisStats {
  return create(reportsV1.ProsthesisStatsSchema, {
    prosthesisType: row.key,
    eventsCount: Number(row.events),
    totalDuration: Number(row.duration),
    avgAmplitude: row.amplitude,
    avgFrequency: row.frequency,
  });
}

/** Seed 003's POST /report. */
export function reportServiceImpl(
  queries: ReportQueries,
): ServiceImpl<typeof reportsReportV1.ReportService> {
  return {
    async getUserReport(req) {
      const period = readPeriod(req.startTs, req.endTs);
      const [profile, groups] = await Promise.all([
        queries.nameAndEmail(req.userId),
        queries.byProsthesisOfUser(req.userId, period),
      ]);
      if (profile === undefined) throw notFound(`user ${req.userId}`);
      const stats = groups.map(prosthesisStats);
      return create(reportsReportV1.GetUserReportResponseSchema, {
        userName: profile.name,
        userEmail: profile.email,
        totalEvents: stats.reduce((sum, s) => sum + s.eventsCount, 0),
        totalDuration: stats.reduce((sum, s) => sum + s.totalDuration, 0),
        prosthesisStats: stats,
      });
    },
  };
}
