#!/usr/bin/env node
// The `warden` command. TypeScript sources run through tsx's loader, so there is no build step.
import { register } from 'tsx/esm/api';

// A reader that goes away (`warden audit export | head`) ends a command quietly, as it ends
// `cat`: without a listener, the EPIPE of the next write would end it with a stack trace. Not
// `serve`: a server that loses its output is failing, and must not look like a clean exit.
if (!process.argv.slice(2).includes('serve')) {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error) => {
      if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw error;
    });
  }
}

register();
const { main } = await import('./main.ts');
process.exitCode = await main(process.argv.slice(2));
