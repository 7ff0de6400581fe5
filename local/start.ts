// `npm start [-- options]`: the whole relay pipeline on this machine (see `npm start -- --help`).

// fauxqs loads node:sqlite (for its optional persistence), and Node flags that module as experimental on
// every start. That notice is not about this program: drop it, print any other warning as Node would.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name === 'ExperimentalWarning' && /SQLite/i.test(warning.message)) return;
  process.stderr.write(`(node) ${warning.name}: ${warning.message}\n`);
});

const { main } = await import('#local/pipeline/main.ts');
process.exitCode = await main(process.argv.slice(2));
