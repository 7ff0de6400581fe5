import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '#infra/config.ts';
import { REPO_ROOT } from '#infra/constructs/relay-function.ts';
import { OUTPUT } from '#infra/stack-contract.ts';
import { ALARM_ID } from '#shared/alarm-definitions.ts';
import { synthRelay } from '#test/helpers/infra.ts';

const read = (path: string) => readFileSync(join(REPO_ROOT, path), 'utf8');
const readme = read('README.md');
/** The docs the README is the front door to: every page of docs/, and the benchmark's report. */
const DOC_PAGES = [
  ...readdirSync(join(REPO_ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
  'reports/bench.md',
];

/** The text of a page outside its fenced code blocks, line by line. */
function proseLines(text: string): string[] {
  let fenced = false;
  return text.split('\n').filter((line) => {
    if (line.startsWith('```')) fenced = !fenced;
    return !fenced && !line.startsWith('```');
  });
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
function slug(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\p{M} _-]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors a page offers: one per heading (a repeated heading gets `-1`, `-2`, ...) and each `<a id>`. */
function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of proseLines(text)) {
    const heading = /^#{1,6} (.*)$/.exec(line);
    if (heading?.[1] !== undefined) {
      const base = slug(heading[1]);
      const count = seen.get(base) ?? 0;
      seen.set(base, count + 1);
      anchors.add(count === 0 ? base : `${base}-${count}`);
    }
    for (const match of line.matchAll(/<a id="([^"]+)"><\/a>/g)) anchors.add(match[1] ?? '');
  }
  return anchors;
}

/** Each relative link of a page (`[text](target)` outside code), as the page writes it. */
function relativeLinks(text: string): string[] {
  return proseLines(text)
    .flatMap((line) => [...line.matchAll(/\]\(([^)\s]+)\)/g)].map((match) => match[1] ?? ''))
    .filter((target) => !/^[a-z]+:/.test(target));
}

/** A section of a page: from its `## heading` to the next heading of that level or higher. */
function section(page: string, heading: string): string {
  const text = read(page);
  const start = text.indexOf(`\n## ${heading}\n`);
  if (start === -1) throw new Error(`${page} has no "## ${heading}" section`);
  const end = text.indexOf('\n## ', start + 1);
  return text.slice(start, end === -1 ? undefined : end);
}

describe('the README is the front door', () => {
  it('has at most 250 lines', () => {
    expect(readme.trimEnd().split('\n').length).toBeLessThanOrEqual(250);
  });

  it('links every page of docs/ and the benchmark report', () => {
    expect(DOC_PAGES.filter((page) => !readme.includes(`](${page})`))).toEqual([]);
  });

  it('every relative link of the README and docs/ reaches a file and, with an #anchor, a heading of it', () => {
    const broken = ['README.md', ...DOC_PAGES].flatMap((page) =>
      relativeLinks(read(page)).flatMap((link) => {
        const [path = '', anchor] = link.split('#');
        const target = path === '' ? page : relative(REPO_ROOT, join(REPO_ROOT, dirname(page), path));
        if (!existsSync(join(REPO_ROOT, target))) return [`${page}: ${link} (no file ${target})`];
        if (anchor === undefined || !target.endsWith('.md')) return [];
        return anchorsOf(read(target)).has(anchor) ? [] : [`${page}: ${link} (no heading #${anchor})`];
      }),
    );
    expect(broken).toEqual([]);
  });
});

describe('docs/deploy.md and docs/runbook.md document the deployment', () => {
  it('lists every stage setting in the settings table', () => {
    const settings = section('docs/deploy.md', 'Stage settings');
    expect(SETTINGS.filter((setting) => !settings.includes(`| \`${setting}\` |`))).toEqual([]);
  });

  it('lists every stack output', () => {
    const outputs = section('docs/deploy.md', 'Stack outputs');
    expect(Object.values(OUTPUT).filter((output) => !outputs.includes(`\`${output}\``))).toEqual([]);
  });

  it('links each alarm description to its runbook entry, with runbookBaseUrl in front when it is set', () => {
    const alarms = (context: Record<string, unknown>) =>
      Object.values(
        synthRelay({ webhooks: true, ...context }).template.findResources('AWS::CloudWatch::Alarm'),
      ).map((alarm) =>
        String((alarm as { Properties: { AlarmDescription: string } }).Properties.AlarmDescription),
      );
    const base = 'https://github.com/court/ecourtdate-relay/blob/main';
    const headings = (page: string) =>
      new Set([...read(page).matchAll(/^#{2,3} (\w+)$/gm)].map((match) => (match[1] ?? '').toLowerCase()));
    for (const description of alarms({})) {
      const [, page, anchor] = /Runbook: (docs\/\w+\.md)#(\w+)$/.exec(description) ?? [];
      expect(page, description).toBeDefined();
      expect(headings(page ?? ''), description).toContain(anchor);
    }
    expect(alarms({ runbookBaseUrl: `${base}/` }).every((d) => d.includes(`Runbook: ${base}/docs/`))).toBe(
      true,
    );
  });

  it('has a runbook entry for every alarm, its name the heading', () => {
    const runbook = read('docs/runbook.md');
    expect(Object.values(ALARM_ID).filter((id) => !runbook.includes(`\n## ${id}\n`))).toEqual([]);
  });
});
