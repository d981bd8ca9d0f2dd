import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * The operator console's build output (clients/console/dist). From src/ and from dist/ this
 * module sits two folders below the repository root, so the same relative path serves both.
 */
export const consoleDir = fileURLToPath(new URL("../../../clients/console/dist", import.meta.url));

/** True when the console has been built (npm start builds it first when it is missing). */
export function consoleBuilt(dir: string = consoleDir): boolean {
  return existsSync(`${dir}/index.html`);
}
