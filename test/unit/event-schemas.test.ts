/**
 * The event contract's JSON Schemas (`schemas/`, docs/contract.md, "The event contract"): each agrees with the
 * relay's own rules (parseJob for the send job, the code's constants for the events) and every example of the
 * README, docs/ and examples/ validates. What the code actually publishes: test/integration/event-schemas.test.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { STAGES } from '#infra/config.ts';
import { EVENT_SCHEMA_FILES, readSchema, SCHEMAS_DIR } from '#infra/event-schemas.ts';
import { splitJobs } from '#local/pipeline/jobs-file.ts';
import { JobValidationError } from '#shared/errors.ts';
import { ECOURTDATE_CHANNELS, parseJob } from '#shared/job.ts';
import { DEAD_LETTER_REASONS } from '#shared/outcome.ts';
import { EVENT_WORDS, KNOWN_STATUSES, OTHER_STATUS } from '#shared/webhook/payload.ts';
import {
  DRAFT_SPECIFIC_KEYWORDS,
  errorsOf,
  keywordsOf,
  schemaValidators,
} from '#test/helpers/event-schemas.ts';
import { REPO_ROOT } from '#test/local/io.ts';

const validators = schemaValidators();
const validator = (file: string) => {
  const validate = validators.get(file);
  if (!validate) throw new Error(`no schema ${file}`);
  return validate;
};
const sendJob = validator('send-job.schema.json');

/** Whether parseJob (the authority) accepts the body. */
function parseJobAccepts(body: string): boolean {
  try {
    parseJob(body);
    return true;
  } catch (error) {
    if (error instanceof JobValidationError) return false;
    throw error;
  }
}

function schemaAccepts(body: string): boolean {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return false;
  }
  return sendJob(value);
}

/** The ```json blocks of the README and every page of docs/, parsed (blocks that are not plain JSON skipped). */
function documentedJsonBlocks(): { source: string; value: unknown }[] {
  const pages = ['README.md', ...readdirSync(join(REPO_ROOT, 'docs')).map((page) => `docs/${page}`)];
  return pages.flatMap((page) =>
    [...readFileSync(join(REPO_ROOT, page), 'utf8').matchAll(/```json\n([\s\S]*?)```/g)].flatMap((match) => {
      try {
        return [{ source: page, value: JSON.parse(match[1] ?? '') as unknown }];
      } catch {
        return [];
      }
    }),
  );
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Every job of examples/*.jsonl, read as `npm start` and `relay send` read them. */
function exampleFileJobs(): { source: string; body: string }[] {
  return readdirSync(join(REPO_ROOT, 'examples'))
    .filter((name) => name.endsWith('.jsonl'))
    .flatMap((name) =>
      splitJobs(readFileSync(join(REPO_ROOT, 'examples', name), 'utf8')).map((entry) => ({
        source: `examples/${name}:${entry.line}`,
        body: entry.body,
      })),
    );
}

describe('the schema files', () => {
  it('are exactly the files of schemas/, each JSON Schema draft 4 as the schema registry takes it', () => {
    expect(readdirSync(SCHEMAS_DIR).sort()).toEqual(EVENT_SCHEMA_FILES.map((entry) => entry.file).sort());
    for (const { file } of EVENT_SCHEMA_FILES) {
      expect(readSchema(file).$schema, file).toBe('http://json-schema.org/draft-04/schema#');
    }
  });

  it('use no keyword whose meaning differs between draft 4 and draft 7, so Ajv checks what the registry holds', () => {
    for (const { file } of EVENT_SCHEMA_FILES) {
      const used = keywordsOf(readSchema(file));
      expect(
        DRAFT_SPECIFIC_KEYWORDS.filter((keyword) => used.has(keyword)),
        file,
      ).toEqual([]);
    }
  });

  it('name the source and detail-type of each event as the code publishes them', () => {
    for (const { file, detailType, describes } of EVENT_SCHEMA_FILES.filter((e) => e.describes === 'event')) {
      const schema = readSchema(file) as { properties: Record<string, { enum: unknown[] }> };
      expect(schema['x-amazon-events-detail-type' as keyof typeof schema], file).toBe(detailType);
      expect(schema.properties['detail-type']?.enum, file).toEqual([detailType]);
      expect(schema.properties.source?.enum, `${file} (${describes})`).toEqual(['ecourtdate-relay']);
    }
  });
});

describe('send-job.schema.json', () => {
  it('lists eCourtDate’s channels as the relay does', () => {
    const { definitions } = readSchema('send-job.schema.json') as {
      definitions: { message: { properties: { channel: { enum: unknown[] } } } };
    };
    expect(definitions.message.properties.channel.enum).toEqual([...ECOURTDATE_CHANNELS]);
  });

  it('accepts every job of the README and docs/ that parseJob accepts', () => {
    const jobs = documentedJsonBlocks().filter(
      ({ value }) => isRecord(value) && 'id' in value && 'message' in value,
    );
    expect(jobs.length).toBeGreaterThanOrEqual(3);
    for (const { source, value } of jobs) {
      expect(parseJobAccepts(JSON.stringify(value)), source).toBe(true);
      expect(sendJob(value), `${source}: ${errorsOf(sendJob).join('; ')}`).toBe(true);
    }
  });

  it('agrees with parseJob on every job of examples/, valid or not', () => {
    const jobs = exampleFileJobs();
    expect(jobs.filter((job) => parseJobAccepts(job.body)).length).toBeGreaterThanOrEqual(10);
    for (const { source, body } of jobs) {
      expect(schemaAccepts(body), `${source}: ${errorsOf(sendJob).join('; ')}`).toBe(parseJobAccepts(body));
    }
  });

  /** Jobs that break a rule of docs/contract.md, "The send job": parseJob refuses each, and so does the schema. */
  const job = (message: Record<string, unknown>, rest: Record<string, unknown> = {}) =>
    JSON.stringify({ id: 'cms-1', message: { to: '+15551234567', content: 'Hi', ...message }, ...rest });
  const INVALID: Record<string, string> = {
    'no id': JSON.stringify({ message: { to: '+15551234567', content: 'Hi' } }),
    'an id with a space': job({}, { id: 'cms 1' }),
    'an id of 129 characters': job({}, { id: 'a'.repeat(129) }),
    'a number as id': job({}, { id: 17 }),
    'no message': JSON.stringify({ id: 'cms-1' }),
    'an array as body': '[]',
    'a whole EventBridge event': JSON.stringify({ 'detail-type': 'eCourtDate Send Message', detail: {} }),
    'no to': JSON.stringify({ id: 'cms-1', message: { content: 'Hi' } }),
    'blank content': job({ content: '   ' }),
    'content of 2001 characters': job({ content: 'x'.repeat(2001) }),
    'a subject of 256 characters': job({ subject: 's'.repeat(256) }),
    'a null subject': job({ subject: null }),
    'channel sms': job({ channel: 'sms' }),
    'channel email with a phone number': job({ channel: 'email' }),
    'channel text with an e-mail address': job({ channel: 'text', to: 'someone@example.com' }),
    'channel voice with an e-mail address': job({ channel: 'voice', to: 'someone@example.com' }),
    'a recipient that is neither': job({ to: 'call me maybe' }),
    'an @ that is no address': job({ to: 'someone@example' }),
    'letters in a number': job({ to: '+1555CALLNOW' }),
    'punctuation without a digit': job({ to: '(-)', channel: 'text' }),
    'skip_duplicate as a string': job({ skip_duplicate: 'yes' }),
    'scheduled_at without a time zone': job({ scheduled_at: '2035-12-01T10:00:00' }),
    'scheduled_at in eCourtDate’s own form, which has no time zone': job({
      scheduled_at: '2035-12-01 15:00:00',
    }),
    'expires_at without a time zone': job({}, { expires_at: '2035-12-03T10:00:00' }),
    'expires_at as a date only': job({}, { expires_at: '2035-12-03' }),
    'expires_at as epoch seconds': job({}, { expires_at: 2080000000 }),
    'a blank agency_reference': job({}, { agency_reference: ' ' }),
    'an agency_reference of 129 characters': job({}, { agency_reference: 'a'.repeat(129) }),
  };
  for (const [name, body] of Object.entries(INVALID)) {
    it(`refuses, as parseJob does: ${name}`, () => {
      expect(parseJobAccepts(body)).toBe(false);
      expect(schemaAccepts(body)).toBe(false);
    });
  }

  const VALID: Record<string, string> = {
    'unknown message fields passed through, big numbers too':
      '{"id":"cms-1","message":{"to":"+15551234567","content":"Hi","template_id":12345678901234567890,"tags":["a"]}}',
    'unknown top-level fields': job({}, { source_system: 'cms' }),
    'a push recipient of any form': job({ channel: 'push', to: 'device-token-1' }),
    'a phone number not in E.164 form (a warning only)': job({ to: '(555) 123-4567', channel: 'voice' }),
    'an offset without a colon': job({ scheduled_at: '2035-12-01T10:00-0500' }),
    'content of 2000 characters, astral ones counted once': job({ content: '😀'.repeat(2000) }),
    'padded recipient': job({ to: '  someone@example.com ', channel: 'email' }),
  };
  for (const [name, body] of Object.entries(VALID)) {
    it(`accepts, as parseJob does: ${name}`, () => {
      expect(parseJobAccepts(body)).toBe(true);
      expect(schemaAccepts(body), errorsOf(sendJob).join('; ')).toBe(true);
    });
  }

  it('agrees with parseJob on generated jobs (real calendar dates: only parseJob checks the calendar)', () => {
    const text = fc.oneof(
      fc.constantFrom(
        '',
        ' ',
        'Hi',
        '+15551234567',
        '5551234567',
        '(555) 123-4567',
        'a@b.co',
        'a@b',
        '@',
        'x y',
        '(-)',
        ' +1 ',
        'a b@c.d',
      ),
      fc.string({ maxLength: 12 }),
    );
    const instant = fc.constantFrom(
      '2035-12-01T10:00:00-05:00',
      '2035-12-01T15:00Z',
      '2035-12-01T15:00:00.123456Z',
      '2035-12-01 15:00:00',
      '2035-12-01',
      'tomorrow',
    );
    const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
    // Mostly a valid value, so that most jobs break at most one rule and each rule's verdict shows.
    const mostly = <T, U>(valid: T, other: fc.Arbitrary<U>) =>
      fc.oneof({ weight: 4, arbitrary: fc.constant(valid) }, { weight: 1, arbitrary: other });
    const body = fc.record(
      {
        id: mostly(
          'cms-1',
          fc.oneof(fc.constantFrom('a.b_c:d-e', 'has space', ''), fc.string({ maxLength: 6 })),
        ),
        message: fc.record(
          {
            to: fc.oneof(text, fc.integer()),
            content: mostly('Court on Dec 3', fc.oneof(text, fc.constant(null))),
            subject: optional(mostly('Court', fc.oneof(text, fc.boolean()))),
            channel: optional(fc.oneof(fc.constantFrom(...ECOURTDATE_CHANNELS, 'sms', 'TEXT'), fc.integer())),
            scheduled_at: optional(mostly('2035-12-01T10:00:00-05:00', fc.oneof(instant, fc.integer()))),
            skip_duplicate: optional(mostly(false, fc.constant('true'))),
          },
          { requiredKeys: ['to'] },
        ),
        agency_reference: optional(mostly('county-a', fc.oneof(text, fc.integer()))),
        expires_at: optional(instant),
      },
      { requiredKeys: ['message'] },
    );
    fc.assert(
      fc.property(body, (value) => {
        const json = JSON.stringify(value);
        expect(schemaAccepts(json), json).toBe(parseJobAccepts(json));
      }),
      { seed: 20261207, numRuns: 2000 },
    );
  });
});

/** A detail's properties, as far as these tests read them. */
type SchemaProperties = Record<string, { enum: unknown[] }>;

describe('the event schemas', () => {
  const detailOf = (file: string) => {
    const schema = readSchema(file) as { definitions: Record<string, { properties: SchemaProperties }> };
    const [detail] = Object.values(schema.definitions);
    if (!detail) throw new Error(`${file} has no detail definition`);
    return detail;
  };
  const STATUSES = [...KNOWN_STATUSES, ...EVENT_WORDS, OTHER_STATUS].sort();

  it('list the dead-letter reasons, delivery statuses and stages the code has', () => {
    expect(detailOf('job-settled.schema.json').properties.reason?.enum).toEqual([...DEAD_LETTER_REASONS]);
    expect([...(detailOf('job-delivery-status.schema.json').properties.status?.enum ?? [])].sort()).toEqual(
      STATUSES,
    );
    expect(
      [...(detailOf('job-delivery-status.schema.json').properties.job_status?.enum ?? [])].sort(),
    ).toEqual(STATUSES);
    for (const file of ['message-status', 'inbound-message', 'webhook'].map((n) => `${n}.schema.json`)) {
      const statuses = detailOf(file)
        .properties.status?.enum.filter((s) => s !== null)
        .sort();
      expect(statuses, file).toEqual(STATUSES);
    }
    for (const { file } of EVENT_SCHEMA_FILES.filter((e) => e.describes === 'event')) {
      expect(detailOf(file).properties.stage?.enum, file).toEqual([...STAGES]);
    }
  });

  it('give the three webhook events one detail, apart from kind and direction', () => {
    const [status, inbound, webhook] = ['message-status', 'inbound-message', 'webhook'].map((name) => {
      const { properties, ...rest } = detailOf(`${name}.schema.json`);
      const { kind: _kind, direction: _direction, ...others } = properties;
      return { ...rest, description: undefined, properties: others };
    });
    expect(inbound).toEqual(status);
    expect(webhook).toEqual(status);
  });

  it('accept every example detail of docs/webhooks.md as the event it documents', () => {
    const fileOf = (detail: Record<string, unknown>): string | undefined => {
      if (detail.kind === 'message_status') return 'message-status.schema.json';
      if (detail.kind === 'inbound_message') return 'inbound-message.schema.json';
      if (detail.kind === 'webhook') return 'webhook.schema.json';
      if ('job_status' in detail) return 'job-delivery-status.schema.json';
      if ('outcome' in detail) return 'job-settled.schema.json';
      return undefined;
    };
    const examples = documentedJsonBlocks().flatMap(({ source, value }) => {
      const file = isRecord(value) ? fileOf(value) : undefined;
      return file ? [{ source, file, detail: value }] : [];
    });
    expect(new Set(examples.map((e) => e.file)).size).toBe(5);
    for (const { source, file, detail } of examples) {
      const validate = validator(file);
      const event = { source: 'ecourtdate-relay', 'detail-type': readSchema(file).title, detail };
      expect(validate(event), `${source} (${file}): ${errorsOf(validate).join('; ')}`).toBe(true);
    }
  });

  it('refuse a Job Settled detail whose reason does not fit its outcome', () => {
    const validate = validator('job-settled.schema.json');
    const event = (detail: object) => ({
      source: 'ecourtdate-relay',
      'detail-type': 'eCourtDate Job Settled',
      detail: { job_id: 'cms-1', attempts: 1, settled_at: '2026-12-01T15:00:01.204Z', ...detail },
    });
    expect(validate(event({ outcome: 'dead_lettered', reason: 'forbidden', last_status: 403 }))).toBe(true);
    expect(validate(event({ outcome: 'dead_lettered' }))).toBe(false);
    expect(validate(event({ outcome: 'delivered', reason: 'forbidden' }))).toBe(false);
    expect(validate(event({ outcome: 'duplicate', uuid: 'u-1' }))).toBe(false);
    expect(validate(event({ outcome: 'delivered', replayed: false }))).toBe(false);
    expect(validate(event({ outcome: 'delivered', text: 'Room 4B' }))).toBe(false);
  });
});
