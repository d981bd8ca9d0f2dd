import { execFileSync } from "node:child_process";

/** Debian's interpreter: python3-grpcio belongs to it, not to a pyenv python3 on PATH. */
export const python = process.env.GATE_TEST_PYTHON ?? "/usr/bin/python3";

let available: boolean | undefined;

/** Whether that interpreter can import grpc and protobuf (checked once per test file). */
export function pythonHasGrpc(): boolean {
  if (available === undefined) {
    try {
      execFileSync(python, ["-c", "import grpc, google.protobuf"], { stdio: "ignore" });
      available = true;
    } catch {
      available = false;
    }
  }
  return available;
}

/** The Python tier's availability, announcing in one line when `tier` is skipped. */
export function pythonTier(tier: string): boolean {
  const ok = pythonHasGrpc();
  if (!ok) {
    console.info(
      `[tier] ${tier}: skipped, ${python} cannot import grpc (apt-get install python3-grpcio python3-protobuf)`,
    );
  }
  return ok;
}
