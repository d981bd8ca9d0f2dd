import { ApiKeyStore, type EnvVars } from "@gate/runtime";
import { Command, Option } from "commander";
import { withPlatformDatabase } from "./maintenance.js";

/**
 * `gate keys …`: operator keys, straight in the platform's database. The data folder (or
 * DATABASE_URL) is the authority here rather than an operator key, so an operator who lost
 * every key can still get a new one; beside a running `gate start` it shares its embedded
 * PostgreSQL.
 */
export function keysCommand(env: EnvVars): Command {
  const keys = new Command("keys").description(
    "create, list and revoke operator API keys (works while the platform runs)",
  );
  const withKeys = <T>(work: (store: ApiKeyStore) => Promise<T>) =>
    withPlatformDatabase(env, [], "gate-keys", (pool) => work(new ApiKeyStore(pool)));

  keys
    .command("create")
    .alias("mint")
    .description(
      "create an operator key, or a service key for GATE_SERVICE_KEY, and print it (the only time it is shown)",
    )
    .requiredOption("--name <name>", "who holds the key (shown by keys list)")
    .addOption(
      new Option("--role <role>", "the key's role")
        .choices(["operator", "service"])
        .default("operator"),
    )
    .action(async (options: { name: string; role: "operator" | "service" }) => {
      const name = options.name.trim();
      if (name === "") throw new Error("--name must not be blank");
      const minted = await withKeys((store) =>
        store.mint({ role: options.role, subject: name, label: `${options.role} ${name}` }),
      );
      console.log(minted.key);
    });

  keys
    .command("list")
    .description(
      "list operator and service keys: id, prefix, role, holder, created, state (never the keys)",
    )
    .action(async () => {
      const listed = await withKeys(async (store) => [
        ...(await store.list("operator")),
        ...(await store.list("service")),
      ]);
      for (const key of listed) {
        const state = key.revokedAt === null ? "active" : `revoked ${key.revokedAt.toISOString()}`;
        console.log(
          `${key.id}  ${key.keyPrefix}…  ${key.role}  ${key.subject}  ${key.createdAt.toISOString()}  ${state}`,
        );
      }
    });

  keys
    .command("revoke")
    .description("revoke a key at once")
    .argument("<id|prefix>", "the key's id or the prefix keys list shows")
    .action(async (target: string) => {
      const revoked = await withKeys((store) => store.revoke(target));
      if (revoked === null) throw new Error(`no active key matches ${target}`);
      console.log(`revoked ${revoked.id} (${revoked.keyPrefix}…, ${revoked.subject})`);
    });
  return keys;
}
