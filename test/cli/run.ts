import { runCli } from '#cli/main.ts';
import { REPO_ROOT } from '#test/local/io.ts';

export interface CliRun {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `npm run relay -- <argv>` in process, from the repository root, and captures what it prints. */
export function relay(...argv: string[]): Promise<CliRun> {
  return relayWithEnv({}, ...argv);
}

/** `relay` with these environment variables (the CLI sees no others of the test process). */
export async function relayWithEnv(env: Record<string, string>, ...argv: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const status = await runCli(argv, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    cwd: REPO_ROOT,
    env,
  });
  return { status, stdout, stderr };
}
