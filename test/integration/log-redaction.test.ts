import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createThen } from '#local/ecourtdate-simulator/index.ts';
import { API_CLIENT_ITEM_ID } from '#shared/ledger/schema.ts';
import { DLQ_ATTRIBUTE } from '#shared/sqs/settle.ts';
import { jobBody } from '#test/helpers/factories.ts';
import { captureLogs, type LogCapture } from '#test/helpers/log-capture.ts';
import { CLIENT_SECRET, type Harness, LEDGER_TABLE, startHarness } from '#test/helpers/relay-harness.ts';

const ONEOFFS = '/v1/messages/oneoffs';
const PHONE = '+15557654321';
const PHONE_DIGITS = '5557654321';
const CONTENT = 'Private: Jordan, your hearing on Dec 3 at 9:00 AM in Room 4B.';
const SUBJECT = 'Confidential hearing notice';

let h: Harness;
let logs: LogCapture;

beforeAll(async () => {
  h = await startHarness({ env: { HTTP_TIMEOUT_MS: '300', POWERTOOLS_LOG_LEVEL: 'DEBUG' } });
  logs = captureLogs();
});

/** Closes the stage's circuit breaker as a probe would (docs/pacing.md), so that the next row is sent. */
async function closeBreaker(): Promise<void> {
  await h.dynamodb.client.send(
    new UpdateItemCommand({
      TableName: LEDGER_TABLE,
      Key: { id: { S: API_CLIENT_ITEM_ID } },
      UpdateExpression: 'SET breaker_state = :closed',
      ExpressionAttributeValues: { ':closed': { S: 'closed' } },
    }),
  );
}

afterAll(async () => {
  logs?.stop();
  await h?.close();
});

it('logs, metrics and dead-letter attributes of a run through every row carry no secret, token, message text or full phone number', async () => {
  // The server echoes the message back in its error bodies, as real APIs often do.
  const echo = { message: `Rejected: ${CONTENT}`, to: PHONE, subject: SUBJECT };
  const rows: [string, Parameters<Harness['sim']['script']>[0]['action'] | undefined][] = [
    ['ok', undefined],
    ['r400', { kind: 'respond', status: 400, body: echo }],
    ['r401', { kind: 'respond', status: 401, body: echo }],
    ['r403', { kind: 'respond', status: 403, body: echo }],
    ['r404', { kind: 'respond', status: 404, body: echo }],
    ['r405', { kind: 'respond', status: 405, body: echo }],
    ['r500', { kind: 'respond', status: 500, body: echo }],
    ['r503', { kind: 'respond', status: 503, body: echo }],
    ['r504', createThen({ kind: 'respond', status: 504, body: echo })],
    ['hang', { kind: 'hang' }],
    ['drop', { kind: 'drop' }],
    // Last: after a 429 the instance rightly holds every send until the window resets.
    ['r429', { kind: 'respond', status: 429, body: echo }],
  ];
  for (const [id, action] of rows) {
    h.sim.clearScript();
    if (action) h.sim.script({ match: { path: ONEOFFS }, action });
    await h.enqueue(jobBody({ id }, { to: PHONE, content: `${CONTENT} (${id})`, subject: SUBJECT }));
    // Each row on a closed circuit breaker, seen by a new container: the 401, 5xx and no-answer rows would open it
    // and hold the next ones.
    await closeBreaker();
    await h.invokeWith(h.createInstance());
  }
  await h.fastForward();
  await h.enqueue(jobBody({ id: 'invalid' }, { to: PHONE, content: 'x'.repeat(2001) }));
  await h.enqueue(`not json ${CONTENT} ${PHONE}`);
  await h.invoke();
  await h.enqueue(
    jobBody({ id: 'expired', expires_at: '2020-01-01T00:00:00Z' }, { to: PHONE, content: CONTENT }),
  );
  await h.invoke();

  const deadLetters = await h.drainDeadLetters();
  const attributes = deadLetters
    .flatMap((m) => Object.values(m.MessageAttributes ?? {}).map((v) => v.StringValue ?? ''))
    .join('\n');

  // The run really went through the rows: without this, an empty capture would pass.
  expect(logs.text()).toMatch(/"outcome":\s*"delivered"/);
  expect(logs.text()).toMatch(/"reason":\s*"bad_request"/);
  expect(logs.text()).toMatch(/"cause":\s*"unknown_outcome"/);
  expect(logs.text()).toMatch(/"AuthFailures"/);
  expect(logs.text()).toMatch(/"response_excerpt":/);
  expect(deadLetters.map((m) => m.MessageAttributes?.[DLQ_ATTRIBUTE.reason]?.StringValue).sort()).toEqual(
    ['bad_request', 'client_error', 'expired', 'forbidden', 'invalid_job', 'invalid_job', 'not_found'].sort(),
  );

  for (const text of [logs.text(), attributes]) {
    expect(text).not.toContain(CLIENT_SECRET);
    expect(text).not.toContain('eyJ'); // every token the simulator issues is a JWT
    expect(text).not.toMatch(/Bearer\s+\S/);
    expect(text).not.toContain('Private: Jordan');
    expect(text).not.toContain(SUBJECT);
    expect(text).not.toContain(PHONE_DIGITS);
  }
});
