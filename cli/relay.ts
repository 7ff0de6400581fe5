import { runCli } from '#cli/main.ts';

// `npm run relay -- <command>`: the operator CLI (see `npm run relay -- --help`).
process.exitCode = await runCli(process.argv.slice(2));
