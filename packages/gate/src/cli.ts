import { loadEnv } from "@gate/runtime";
import { Command, CommanderError } from "commander";
import { keysCommand } from "./keys-commands.js";
import { migrateCommand } from "./migrate-command.js";
import { serviceModules } from "./modules.js";
import { reportsCommand } from "./reports-commands.js";
import { serveCommand, startCommand } from "./start-command.js";
import { tasksCommand } from "./tasks-commands.js";
import { telemetryCommand } from "./telemetry-commands.js";

/**
 * `gate`: every command with its options and `--help`. Settings come from the environment
 * and a .env file (GATE_ENV_FILE, default ./.env), the same ones the server reads, so a
 * command finds the platform that `gate start` runs (API_HOST, API_PORT, GATE_DATA_DIR).
 */
export function gateProgram(env = loadEnv()): Command {
  const program = new Command("gate")
    .description("Run and operate the Gate platform.")
    .addHelpText(
      "after",
      [
        "",
        `Services: ${serviceModules.map((m) => m.name).join(", ")}`,
        "Configuration comes from the environment and a .env file; see the README.",
        "Run gate <command> --help for a command's options.",
      ].join("\n"),
    );
  for (const command of [
    startCommand(env),
    serveCommand(env),
    migrateCommand(env),
    keysCommand(env),
    tasksCommand(env),
    telemetryCommand(env),
    reportsCommand(env),
  ])
    program.addCommand(command);
  forEachCommand(program, (command) =>
    command
      .helpOption("-h, --help", "show this help")
      .showHelpAfterError(`(see ${fullName(command)} --help)`)
      .configureOutput({ outputError: (text, write) => write(`gate: ${usageMessage(text)}`) })
      .exitOverride(),
  );
  return program;
}

/**
 * Commander's message, shorter: "option '--x <n>' argument 'y' is invalid. must be …"
 * becomes "--x must be …", the flag and what is wrong with its value.
 */
function usageMessage(text: string): string {
  const message = text.replace(/^error: /, "");
  const invalid = /^option '(--[\w-]+)[^']*' argument '.*' is invalid\. (.*)$/s.exec(message);
  return invalid === null ? message : `${invalid[1]} ${invalid[2]}`;
}

function forEachCommand(command: Command, visit: (command: Command) => void): void {
  visit(command);
  for (const sub of command.commands) forEachCommand(sub, visit);
}

function fullName(command: Command): string {
  const names: string[] = [];
  for (let at: Command | null = command; at !== null; at = at.parent) names.unshift(at.name());
  return names.join(" ");
}

/** Runs the CLI; resolves with the exit code (a long-running command resolves when started). */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    await gateProgram().parseAsync([...argv], { from: "user" });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version are exits with code 0; commander printed the rest already.
      return error.exitCode;
    }
    // One clear line, no stack trace: these are operator mistakes or unreachable servers.
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`gate: ${message}\n`);
    return 1;
  }
}
