import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isAllowed } from '#local/iam/gate.ts';
import type { PolicyStatement } from '#local/iam/template-policies.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const STAGING_QUEUE = 'arn:aws:sqs:us-east-1:000000000000:EcourtdateRelay-staging-SendQueue';
const PRODUCTION_QUEUE = 'arn:aws:sqs:us-east-1:000000000000:EcourtdateRelay-production-SendQueue';
const DEFAULT_BUS = 'arn:aws:events:us-east-1:000000000000:event-bus/default';

/** The staging producer's policy exactly as docs/deploy.md prints it, its placeholders filled in. */
function documentedPolicy(): PolicyStatement[] {
  const deploy = readFileSync(join(ROOT, 'docs', 'deploy.md'), 'utf8');
  const section = deploy.slice(deploy.indexOf("### A producer's IAM policy"));
  const json = /```json\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  const filled = json
    .replace('<SendQueueArn of EcourtdateRelay-staging>', STAGING_QUEUE)
    .replace('<region>', 'us-east-1')
    .replace('<account>', '000000000000');
  return (JSON.parse(filled) as { Statement: PolicyStatement[] }).Statement;
}

/** A PutEvents call whose entries carry these sources (one value per entry, as IAM sees a multi-entry call). */
const putEvents = (sources: string[], detailType = 'eCourtDate Send Message') => ({
  action: 'events:PutEvents',
  resource: DEFAULT_BUS,
  context: { 'events:source': sources, 'events:detail-type': sources.map(() => detailType) },
});

describe("the producer's IAM policy of docs/deploy.md keeps a staging producer to staging", () => {
  it('lets it send jobs to the staging queue and publish send-job events with the staging source', async () => {
    const policy = documentedPolicy();
    expect(await isAllowed(policy, { action: 'sqs:SendMessage', resource: STAGING_QUEUE })).toBe(true);
    expect(await isAllowed(policy, putEvents(['ecourtdate-relay.upstream.staging']))).toBe(true);
  });

  it('refuses it the production queue, the production source (also beside a staging entry), and any other detail-type', async () => {
    const policy = documentedPolicy();
    expect(await isAllowed(policy, { action: 'sqs:SendMessage', resource: PRODUCTION_QUEUE })).toBe(false);
    expect(await isAllowed(policy, putEvents(['ecourtdate-relay.upstream.production']))).toBe(false);
    const mixed = putEvents(['ecourtdate-relay.upstream.staging', 'ecourtdate-relay.upstream.production']);
    expect(await isAllowed(policy, mixed)).toBe(false);
    const otherType = putEvents(['ecourtdate-relay.upstream.staging'], 'Something Else');
    expect(await isAllowed(policy, otherType)).toBe(false);
  });

  it('refuses a call whose source the request does not carry', async () => {
    expect(await isAllowed(documentedPolicy(), { action: 'events:PutEvents', resource: DEFAULT_BUS })).toBe(
      false,
    );
  });
});
