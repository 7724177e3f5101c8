/** Waiting in tests: for a condition, never for a fixed time that a loaded machine could overrun. */

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Waits until `condition` holds, checking every `everyMs`; fails naming `what` after `boundMs`. The bound is
 * generous on purpose: a loaded CI machine is slow, and only a condition that never comes true should fail.
 */
export async function waitFor(
  what: string,
  condition: () => Promise<boolean>,
  boundMs = 180_000,
  everyMs = 250,
): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting (${boundMs / 1000} s) for ${what}`);
    await sleep(everyMs);
  }
}
