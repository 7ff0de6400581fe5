/**
 * Command-line helpers shared by `npm run relay` and `npm start` (cli/ may import from local/, never the reverse).
 */

/** The options of a `node:util` `parseArgs` configuration, as far as these helpers need them. */
type OptionKinds = Readonly<Record<string, { readonly type: 'string' | 'boolean' }>>;

/**
 * Joins a string option and a value that looks like a negative number (`--concurrency -1` becomes
 * `--concurrency=-1`), so that `parseArgs` hands the value to the option's own range check, whose message says
 * what is accepted, instead of refusing it as an ambiguous option argument. Anything else is left as it is.
 *
 * @example
 * joinNegativeValues(['--max', '-1'], { max: { type: 'string' } }); // ['--max=-1']
 */
export function joinNegativeValues(argv: readonly string[], options: OptionKinds): string[] {
  const joined: string[] = [];
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index] ?? '';
    const next = argv[index + 1];
    const name = arg.startsWith('--') && !arg.includes('=') ? arg.slice(2) : undefined;
    if (
      name !== undefined &&
      options[name]?.type === 'string' &&
      next !== undefined &&
      /^-\.?\d/.test(next)
    ) {
      joined.push(`${arg}=${next}`);
      index += 1;
    } else {
      joined.push(arg);
    }
  }
  return joined;
}
