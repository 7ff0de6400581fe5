/**
 * The sender under Lambda's function timeout (docs/test-world.md; docs/chaos.md): an
 * invocation still awaiting eCourtDate's answer at the deadline is stopped as Lambda stops its environment. The
 * answer never reaches it, nothing it would have done afterwards happens, its batch comes back after the
 * visibility timeout, and the next invocation starts a fresh container.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Settlement } from '#shared/sender/runtime.ts';
import { jobBody } from '#test/helpers/factories.ts';
import { type Harness, type HarnessInstance, startHarness } from '#test/helpers/relay-harness.ts';

const ONEOFFS = '/v1/messages/oneoffs';
const JOB_ID = 'cms-48213-reminder-1';
// Shorter than eCourtDate's slow answer below, which is shorter than the sender's 2 s HTTP timeout.
const FUNCTION_TIMEOUT_MS = 800;
const ANSWER_AFTER_MS = 1_200;
let h: Harness;

afterEach(async () => {
  await h?.close();
});

/** One invocation that times out while eCourtDate is creating the message, and what the instance did. */
async function timedOutInvocation() {
  h = await startHarness();
  h.sim.script({ match: { path: ONEOFFS }, times: 1, delayMs: ANSWER_AFTER_MS, action: { kind: 'pass' } });
  await h.enqueue(jobBody());
  const logs: string[] = [];
  const settled: Settlement[][] = [];
  const instance: HarnessInstance = h.createInstance({
    log: (line) => logs.push(line),
    onSettled: (settlements) => settled.push([...settlements]),
  });
  const result = await h.invokeWith(instance, { functionTimeoutMs: FUNCTION_TIMEOUT_MS });
  const logsAtDeadline = logs.length;
  // eCourtDate answers after the deadline: the message is created.
  await expect.poll(() => h.sim.messages.length).toBe(1);
  await expect.poll(() => h.sends().length).toBe(1);
  await new Promise((resolve) => setTimeout(resolve, 200));
  return { instance, result, logs, logsAtDeadline, settled };
}

describe('an invocation past the function timeout', () => {
  it('fails its whole batch', async () => {
    const { result } = await timedOutInvocation();

    expect(result.error).toBeInstanceOf(Error);
    expect(result.deleted).toEqual([]);
  });

  it('never learns the answer: the claimed attempt stays open in the ledger, with no settle', async () => {
    await timedOutInvocation();

    expect(await h.ledger().get(JOB_ID)).toMatchObject({ attempt_open: true });
  });

  it('does nothing after the deadline: no delete, no dead letter, no log line, no settlement', async () => {
    const { logs, logsAtDeadline, settled } = await timedOutInvocation();

    expect((await h.inspect()).inflight).toHaveLength(1);
    expect(await h.drainDeadLetters()).toEqual([]);
    expect(logs.slice(logsAtDeadline)).toEqual([]);
    expect(settled).toEqual([]);
  });

  it('hands the batch back after the visibility timeout, to a fresh container that settles it', async () => {
    const { instance } = await timedOutInvocation();
    const tokensBefore = h.sim.requests.filter((r) => r.path === '/oauth/token').length;

    await h.fastForward();
    const again = await h.invokeWith(instance);

    expect(instance.instance.coldStarts).toBe(2);
    // A cold start: the token cache is new, so the fresh container asks for a token again.
    expect(h.sim.requests.filter((r) => r.path === '/oauth/token').length).toBe(tokensBefore + 1);
    expect(again.deleted).toHaveLength(1);
    // The message the timed-out attempt created answers the resend with 409: delivered once.
    expect(h.sends().map((r) => r.status)).toEqual([201, 409]);
    expect(h.sim.messages).toHaveLength(1);
  });
});

describe('metrics of an invocation stopped at its timeout', () => {
  it("publishes each settled record's metrics at once: a 403 beside a record still waiting at the deadline reaches the Forbidden403 alarm", async () => {
    h = await startHarness();
    h.sim.script({
      match: { path: ONEOFFS, contentIncludes: 'refused' },
      action: { kind: 'respond', status: 403 },
    });
    h.sim.script({
      match: { path: ONEOFFS, contentIncludes: 'slow' },
      delayMs: ANSWER_AFTER_MS,
      action: { kind: 'pass' },
    });
    await h.enqueue(jobBody({ id: 'job-refused' }, { content: 'refused' }));
    await h.enqueue(jobBody({ id: 'job-slow' }, { content: 'slow' }));
    const emf: Record<string, unknown>[] = [];
    const instance = h.createInstance({
      log: (line) => {
        if (line.includes('"_aws"')) emf.push(JSON.parse(line) as Record<string, unknown>);
      },
    });

    const result = await h.invokeWith(instance, { functionTimeoutMs: FUNCTION_TIMEOUT_MS });

    // The invocation never returned, so no end-of-invocation flush happened; the 403's blob was written already.
    expect(result.error).toBeDefined();
    expect(emf.some((blob) => blob.Responses403 !== undefined)).toBe(true);
  });
});
