import { runCli } from '#cli/main.ts';
import { REPO_ROOT } from '#test/local/io.ts';

export interface CliRun {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `npm run relay -- <argv>` in process, from the repository root, and captures what it prints. */
export async function relay(...argv: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const status = await runCli(argv, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    cwd: REPO_ROOT,
  });
  return { status, stdout, stderr };
}
