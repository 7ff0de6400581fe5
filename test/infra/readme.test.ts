import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '#infra/config.ts';
import { REPO_ROOT } from '#infra/constructs/relay-function.ts';
import { OUTPUT } from '#infra/stack-contract.ts';
import { ALARM_ID } from '#shared/alarm-definitions.ts';

const readme = readFileSync(`${REPO_ROOT}README.md`, 'utf8');

function section(heading: string): string {
  const start = readme.indexOf(`\n## ${heading}\n`);
  if (start === -1) throw new Error(`README has no "## ${heading}" section`);
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end === -1 ? undefined : end);
}

describe('the README documents the deployment', () => {
  it('lists every stage setting in the settings table', () => {
    const deploy = section('Deploy');
    const missing = SETTINGS.filter((setting) => !deploy.includes(`| \`${setting}\` |`));
    expect(missing).toEqual([]);
  });

  it('lists every stack output', () => {
    const deploy = section('Deploy');
    expect(Object.values(OUTPUT).filter((output) => !deploy.includes(`\`${output}\``))).toEqual([]);
  });

  it('has a runbook entry for every alarm', () => {
    const runbook = section('Alarms and runbook');
    expect(Object.values(ALARM_ID).filter((id) => !runbook.includes(`\n### ${id}\n`))).toEqual([]);
  });
});
