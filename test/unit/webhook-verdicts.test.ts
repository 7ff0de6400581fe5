import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { VERDICTS, type VerdictSpec } from '#shared/webhook/verdicts.ts';

/** The rows of the answers table in docs/webhooks.md, "What the receiver does with a request". */
async function documentedAnswers(): Promise<{ outcomes: string[]; status: number; body?: unknown }[]> {
  const doc = await readFile(new URL('../../docs/webhooks.md', import.meta.url), 'utf8');
  const section = doc.split(/^## /m).find((part) => part.startsWith('What the receiver does with a request'));
  const rows = (section ?? '')
    .split('\n')
    .filter((line) => line.startsWith('|') && !/^\|[-| ]+\|$/.test(line))
    .slice(1)
    .map((line) => line.split('|').slice(1, -1));
  return rows.map((cells) => {
    const [answer = '', outcome = ''] = cells.slice(-2);
    const body = /`(\{.*\})`/.exec(answer)?.[1];
    return {
      outcomes: [...outcome.matchAll(/`([a-z_]+)`/g)].map((m) => m[1] ?? ''),
      status: Number(/\b\d{3}\b/.exec(answer)?.[0]),
      ...(body === undefined ? {} : { body: JSON.parse(body) }),
    };
  });
}

describe('the table of verdicts', () => {
  it('answers each outcome with the status code docs/webhooks.md gives it, and documents every outcome', async () => {
    const documented = new Map(
      (await documentedAnswers()).flatMap((row) => row.outcomes.map((o) => [o, row.status] as const)),
    );

    const table = new Map(Object.entries(VERDICTS).map(([outcome, spec]) => [outcome, spec.status]));

    expect(documented).toEqual(table);
  });

  it('answers with the body docs/webhooks.md shows, where it shows one', async () => {
    for (const row of await documentedAnswers()) {
      if (row.body === undefined) continue;
      for (const outcome of row.outcomes) {
        const table: Readonly<Record<string, VerdictSpec>> = VERDICTS;
        expect(table[outcome]?.body, outcome).toEqual(row.body);
      }
    }
  });

  it('counts every outcome under a metric and logs every non-2xx above info', () => {
    for (const [outcome, spec] of Object.entries(VERDICTS)) {
      expect(spec.metric, outcome).toMatch(/^Webhook[A-Z]\w+$/);
      if (spec.status >= 400 && spec.status !== 409) expect(spec.level, outcome).not.toBe('info');
    }
  });
});
