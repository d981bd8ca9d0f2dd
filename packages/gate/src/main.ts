// Entry point of `gate` (bin/gate.js).
import { main } from "./cli.js";
import { isServing } from "./start-command.js";

const code = await main(process.argv.slice(2));
// One-shot commands exit now, not when idle keep-alive connections time out; `start` and
// `serve` run until a signal stops them.
if (code !== 0 || !isServing()) process.exit(code);
