import { create } from "@bufbuild/protobuf";
import { type Timestamp, timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { statsProcessingV1 } from "@gate/contracts";
import {
  applyOnceEach,
  type BusEvent,
  definePageToken,
  invalidArgument,
  isUuid,
  pageSize,
} from "@gate/runtime";
import type { Pool } from "pg";
import type { CachedStatsService } from "./cached-stats-service.js";
import {
  type CounterName,
  maxPeriods,
  type ProcessingEvent,
  periodCount,
  type StatsAggregation,
  type StatsCounters,
  type StatsWindow,
} from "./stats-model.js";
import type { StatsRepository } from "./stats-repository.js";

const { ProcessingStatsService } = statsProcessingV1;

/** ListSlots pages by slot id. */
const slotsPage = definePageToken("stats-slots", { slotId: "string" });

/** The inbox group of events recorded through the RPC (their ids are the producers'). */
const recordedEventsGroup = "stats-rpc";

/** RecordProcessingEvents' kinds, and the counter each adds to. */
const kindCounters: Record<string, CounterName> = {
  succeeded: "succeeded",
  timeout: "timeouts",
  provider_error: "provider_errors",
  cancelled: "cancelled",
  worker_error: "worker_errors",
  ingest_request: "ingest_requests",
};

export interface ProcessingStatsDeps {
  pool: Pool;
  schema: string;
  stats: CachedStatsService;
  repository: StatsRepository;
}

export function processingStatsImpl(
  deps: ProcessingStatsDeps,
): ServiceImpl<typeof ProcessingStatsService> {
  const { pool, schema, stats, repository } = deps;

  /** The window's start, checked: not in the future, at most maxPeriods periods back. */
  const sinceOf = (window: StatsWindow, since: Timestamp | undefined, field: string): number => {
    const at = timestampDate(since as Timestamp).getTime();
    const now = stats.now();
    if (at > now) throw invalidArgument(field, "must not be in the future");
    if (periodCount(window, at, now) > maxPeriods) {
      throw invalidArgument(field, `must be at most ${maxPeriods} ${window}s back`);
    }
    return at;
  };

  return {
    async getGlobalStats(req) {
      const window = req.window as StatsWindow;
      const aggregation = await stats.collectGlobalStats(
        window,
        sinceOf(window, req.since, "since"),
      );
      return { aggregation: toProto(aggregation) };
    },

    async getSlotStats(req) {
      const window = req.window as StatsWindow;
      const slotId = normalSlot(req.slotId);
      const since = sinceOf(window, req.since, "since");
      const aggregation = await stats.collectSlotStats(slotId, window, since);
      return { slotId, aggregation: toProto(aggregation) };
    },

    async listSlots(req) {
      const limit = pageSize("page_size", req.pageSize, { fallback: 100, max: 1000 });
      const after = slotsPage.decode(req.pageToken);
      const slots = await repository.listSlots(pool, limit + 1, after?.slotId);
      const page = slots.slice(0, limit);
      const last = page.at(-1);
      return {
        slots: page.map((slot) => ({
          slotId: slot.slotId,
          firstEventAt: timestampFromMs(slot.firstEventAt.getTime()),
          lastEventAt: timestampFromMs(slot.lastEventAt.getTime()),
        })),
        nextPageToken:
          slots.length > limit && last !== undefined
            ? slotsPage.encode({ slotId: last.slotId })
            : "",
      };
    },

    async recordProcessingEvents(req) {
      const now = stats.now();
      const byId = new Map<string, ProcessingEvent>();
      const busEvents: BusEvent[] = req.events.map((input, i) => {
        const field = `events[${i}].occurred_at`;
        const at = timestampDate(input.occurredAt as Timestamp).getTime();
        if (at > now) throw invalidArgument(field, "must not be in the future");
        if (periodCount("week", at, now) > maxPeriods) {
          throw invalidArgument(field, `must be at most ${maxPeriods} weeks back`);
        }
        const id = input.eventId.toLowerCase();
        const counter = kindCounters[input.kind] as CounterName;
        byId.set(id, { slotId: normalSlot(input.slotId), counter, at, count: input.count || 1 });
        return {
          id,
          topic: "stats.processing_event",
          key: input.slotId,
          payload: "",
          occurredAt: "",
        };
      });
      let recorded = 0;
      await stats.recordProcessingEvents([...byId.values()], async (store) => {
        await applyOnceEach(pool, schema, recordedEventsGroup, busEvents, (tx, fresh) => {
          recorded = fresh.length;
          return store(
            tx,
            fresh.flatMap((event) => byId.get(event.id) ?? []),
          );
        });
      });
      return { recorded, duplicates: req.events.length - recorded };
    },
  };
}

/** UUIDs (clients, devices) are kept in lower case, as the event readers keep them. */
function normalSlot(slotId: string): string {
  return isUuid(slotId) ? slotId.toLowerCase() : slotId;
}

/**
 * Messages already built, by the aggregation they show: the in-process cache answers a hit
 * with the very object it stored, so a hit does not build a year of metric messages again.
 */
const built = new WeakMap<StatsAggregation, statsProcessingV1.StatsAggregation>();

function toProto(aggregation: StatsAggregation): statsProcessingV1.StatsAggregation {
  let message = built.get(aggregation);
  if (message === undefined) {
    message = buildProto(aggregation);
    built.set(aggregation, message);
  }
  return message;
}

function buildProto(aggregation: StatsAggregation): statsProcessingV1.StatsAggregation {
  return create(statsProcessingV1.StatsAggregationSchema, {
    window: aggregation.window,
    metrics: aggregation.metrics.map((metric) => ({
      periodStart: timestampFromMs(metric.periodStart),
      periodEnd: timestampFromMs(metric.periodEnd),
      counters: countersToProto(metric.counters),
    })),
    summary: {
      counters: countersToProto(aggregation.summary.counters),
      totalRuns: BigInt(aggregation.summary.totalRuns),
      failureCount: BigInt(aggregation.summary.failureCount),
    },
  });
}

function countersToProto(counters: StatsCounters) {
  return {
    succeeded: BigInt(counters.succeeded),
    timeouts: BigInt(counters.timeouts),
    providerErrors: BigInt(counters.provider_errors),
    cancelled: BigInt(counters.cancelled),
    workerErrors: BigInt(counters.worker_errors),
    ingestRequests: BigInt(counters.ingest_requests),
  };
}
