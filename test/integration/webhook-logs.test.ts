import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { signBody } from '#shared/webhook/signature.ts';
import { captureLogs, type LogCapture } from '#test/helpers/log-capture.ts';
import {
  bodyBytes,
  startWebhookHarness,
  WEBHOOK_SECRET,
  type WebhookHarness,
} from '#test/helpers/webhook-harness.ts';

const PHONE = '+15557654321';
const PHONE_DIGITS = '5557654321';
const EMAIL = 'jordan.private@example.org';
const CONTENT = 'Private: Jordan, I cannot make the hearing on Dec 3, my case is 24-CR-1187.';
const TOKEN = 'tok_9f8e7d6c5b4a39281706';

let h: WebhookHarness;
let logs: LogCapture;

beforeAll(async () => {
  h = await startWebhookHarness({ env: { POWERTOOLS_LOG_LEVEL: 'DEBUG' } });
  logs = captureLogs();
});

afterAll(async () => {
  logs?.stop();
  await h?.close();
});

it('logs of every outcome carry the uuid, kind and outcome, and no message text, full number, e-mail or secret', async () => {
  const messageUuid = randomUUID();
  await h.seedDeliveredJob('job-logs', messageUuid);
  const personal = { from: PHONE, to: EMAIL, content: CONTENT, token: TOKEN };
  const inbound = { uuid: randomUUID(), channel: 'text', direction: 'inbound', ...personal };
  const outbound = {
    uuid: randomUUID(),
    channel: 'email',
    direction: 'outbound',
    message_uuid: messageUuid,
    last_status: 'failed',
    ...personal,
  };
  const forged = { uuid: randomUUID(), direction: 'inbound', ...personal };

  const answers = [
    await h.post(inbound),
    await h.post(inbound),
    await h.post(outbound),
    await h.post(forged, { signature: signBody('wrong', bodyBytes(forged)) }),
    await h.post(forged, { signature: null }),
    await h.post({ ...inbound, uuid: randomUUID(), pad: 'x'.repeat(70 * 1024) }),
    await h.post(`{"content": "${CONTENT}", "from": "${PHONE}"`),
    await h.post(inbound, { headers: { 'content-type': 'text/plain' } }),
    await (async () => {
      h.events.failNext(3, 'InternalException');
      return h.post({ ...inbound, uuid: randomUUID() });
    })(),
  ].map((res) => res.status);

  expect(answers).toEqual([200, 200, 200, 401, 401, 413, 400, 415, 503]);
  expect(logs.text()).toContain(inbound.uuid);
  expect(logs.text()).toMatch(/"outcome":\s*"accepted"/);
  expect(logs.text()).toMatch(/"outcome":\s*"duplicate"/);
  expect(logs.text()).toMatch(/"outcome":\s*"signature_invalid"/);
  expect(logs.text()).toMatch(/"job_id":\s*"job-logs"/);
  for (const secretOrPersonal of [
    CONTENT,
    'cannot make the hearing',
    PHONE_DIGITS,
    EMAIL,
    'jordan.private',
    TOKEN,
    WEBHOOK_SECRET,
  ]) {
    expect(logs.text()).not.toContain(secretOrPersonal);
  }
});
