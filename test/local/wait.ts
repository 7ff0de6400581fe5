/**
 * Retries `check` (an assertion) until it passes or `timeoutMs` has passed, then throws its last error.
 * For outcomes that happen in the background (a poller, a queue), never for measuring speed.
 */
export async function eventually(check: () => unknown, timeoutMs = 15_000, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }
}
