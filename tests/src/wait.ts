// The one way tests and benchmarks poll for a state they cannot subscribe to. Never a
// pause to let time pass: `sleep` is for pacing load, not for waiting on an outcome.

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until the probe answers; on timeout, the error shows the probe's last word. */
export async function until<T>(
  what: string,
  probe: () => Promise<{ done: T } | { last: unknown }> | ({ done: T } | { last: unknown }),
  timeoutMs = 60_000,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await probe();
    if ("done" in answer) return answer.done;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(answer.last)}`);
    await sleep(intervalMs);
  }
}

/** Resolves once `condition` holds, checking it every `interval` ms; fails after `timeout`. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  {
    what = "the condition",
    timeout = 5_000,
    interval = 10,
  }: { what?: string; timeout?: number; interval?: number } = {},
): Promise<void> {
  await until(
    what,
    async () => ((await condition()) ? { done: undefined } : { last: false }),
    timeout,
    interval,
  );
}
