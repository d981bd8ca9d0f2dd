import type { OlapStore } from "../src/olap/olap-store.js";

/**
 * What the reports SQL asks of ClickHouse beyond the basics, each found out by trying it on
 * the engine at hand (in a scratch database), so a tier skips a test for a feature its
 * server really lacks, never from a list kept by hand.
 */
const capabilities = {
  queryParameters: {
    what: "query parameters ({name:Type})",
    probe: (store: OlapStore) => store.query("SELECT {probe:UInt8} AS probe", { probe: 1 }),
  },
  dataSkippingIndexes: {
    what: "data-skipping indexes",
    probe: (store: OlapStore, db: string) =>
      store.command(
        `CREATE TABLE ${db}.indexed (x Int32, INDEX x_idx x TYPE bloom_filter GRANULARITY 1)
         ENGINE = MergeTree ORDER BY x`,
      ),
  },
  exchangeTables: {
    what: "EXCHANGE TABLES",
    probe: async (store: OlapStore, db: string) => {
      await store.command(`CREATE TABLE ${db}.a (x Int32) ENGINE = Memory`);
      await store.command(`CREATE TABLE ${db}.b (x Int32) ENGINE = Memory`);
      await store.command(`EXCHANGE TABLES ${db}.a AND ${db}.b`);
    },
  },
  qualifiedJoinGet: {
    what: "joinGet on a table named with its database",
    probe: async (store: OlapStore, db: string) => {
      await store.command(`CREATE TABLE ${db}.j (k Int32, v String) ENGINE = Join(ANY, LEFT, k)`);
      await store.query(`SELECT joinGet('${db}.j', 'v', toInt32(1)) AS v`);
    },
  },
  mutationsSync: {
    what: "ALTER … SETTINGS mutations_sync",
    probe: async (store: OlapStore, db: string) => {
      await store.command(`CREATE TABLE ${db}.m (x Int32) ENGINE = MergeTree ORDER BY x`);
      await store.command(`ALTER TABLE ${db}.m DELETE WHERE x = 1 SETTINGS mutations_sync = 2`);
    },
  },
} satisfies Record<
  string,
  { what: string; probe: (store: OlapStore, db: string) => Promise<unknown> }
>;

export type Capability = keyof typeof capabilities;

export const describeCapability = (capability: Capability) => capabilities[capability].what;

/** The capabilities `store` lacks, tried in a database `scratch` made and dropped here. */
export async function missingCapabilities(
  store: OlapStore,
  scratch: string,
): Promise<Capability[]> {
  await store.command(`CREATE DATABASE IF NOT EXISTS ${scratch}`);
  const missing: Capability[] = [];
  try {
    for (const [name, { probe }] of Object.entries(capabilities)) {
      if (!(await refusedBy(() => probe(store, scratch)))) continue;
      missing.push(name as Capability);
    }
  } finally {
    await store.command(`DROP DATABASE IF EXISTS ${scratch}`);
  }
  return missing;
}

/**
 * Whether ClickHouse refused `attempt` (an error of its own, "DB::Exception"); any other
 * failure, such as an unreachable server, is thrown rather than taken for a missing feature.
 */
async function refusedBy(attempt: () => Promise<unknown>): Promise<boolean> {
  try {
    await attempt();
    return false;
  } catch (error) {
    if (error instanceof Error && error.message.includes("DB::Exception")) return true;
    throw error;
  }
}
