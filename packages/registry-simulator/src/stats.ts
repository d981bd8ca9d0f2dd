/** Counters the simulator keeps, served at GET /_simulator/stats. */
export interface SimulatorStats {
  /** Requests by route: the form, result pages, document pages, anything else, admin. */
  requests: { form: number; search: number; document: number; other: number; admin: number };
  /** Registry responses by HTTP status (truncated ones count as their 200). */
  responses: Record<string, number>;
  /** Faults injected, by switch; latency counts responses that were delayed. */
  faults: { latency: number; rate429: number; rate5xx: number; captcha: number; truncate: number };
}

export type RequestKind = keyof SimulatorStats["requests"];
export type FaultKind = keyof SimulatorStats["faults"];

export function emptyStats(): SimulatorStats {
  return {
    requests: { form: 0, search: 0, document: 0, other: 0, admin: 0 },
    responses: {},
    faults: { latency: 0, rate429: 0, rate5xx: 0, captcha: 0, truncate: 0 },
  };
}

export function copyStats(stats: SimulatorStats): SimulatorStats {
  return {
    requests: { ...stats.requests },
    responses: { ...stats.responses },
    faults: { ...stats.faults },
  };
}
