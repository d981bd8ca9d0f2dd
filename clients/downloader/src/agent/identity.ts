import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** Who this host is to the server, saved in the output folder so a restart reuses it. */
export interface SavedIdentity {
  clientId: string;
  apiKey: string;
  clientName: string;
  /** The server that issued it: an identity is only reused against the same server. */
  apiUrl: string;
}

const identityFile = ".gate-downloader/identity.json";

export function identityPath(outputDir: string): string {
  return join(outputDir, identityFile);
}

/** The identity saved for this server, or undefined when there is none (or it is unreadable). */
export async function loadIdentity(
  outputDir: string,
  apiUrl: string,
): Promise<SavedIdentity | undefined> {
  let text: string;
  try {
    text = await readFile(identityPath(outputDir), "utf8");
  } catch {
    return undefined;
  }
  try {
    const saved = JSON.parse(text) as Partial<SavedIdentity>;
    if (
      typeof saved.clientId === "string" &&
      typeof saved.apiKey === "string" &&
      typeof saved.clientName === "string" &&
      saved.apiUrl === apiUrl
    )
      return saved as SavedIdentity;
  } catch {
    // A damaged file is as good as none: the host registers again.
  }
  return undefined;
}

/** Saves the identity atomically, readable by this user only: it holds the API key. */
export async function saveIdentity(outputDir: string, identity: SavedIdentity): Promise<void> {
  const path = identityPath(outputDir);
  await mkdir(join(outputDir, ".gate-downloader"), { recursive: true, mode: 0o700 });
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify(identity, null, 2)}\n`, { mode: 0o600 });
  await rename(temp, path);
}
