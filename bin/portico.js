#!/usr/bin/env node
import('../dist/src/cli/index.js').then((cli) => cli.main(process.argv.slice(2))).then(
  (code) => { if (typeof code === 'number') process.exitCode = code; },
  (err) => { console.error(err); process.exit(70); },
);
