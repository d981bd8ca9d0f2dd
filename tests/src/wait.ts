import { vi } from "vitest";

/**
 * Resolves once `condition` holds, checking it every few milliseconds (vi.waitFor); fails
 * after `timeout` ms, naming `what`. For waiting on a state the test cannot subscribe to;
 * never a pause to let time pass.
 */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  {
    what = "the condition",
    timeout = 5_000,
    interval = 10,
  }: { what?: string; timeout?: number; interval?: number } = {},
): Promise<void> {
  await vi.waitFor(
    async () => {
      if (!(await condition())) throw new Error(`still waiting for ${what}`);
    },
    { timeout, interval },
  );
}
