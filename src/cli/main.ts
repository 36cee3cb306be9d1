/**
 * `model-canary` — the operator CLI's process: runs src/cli/program.ts on the command line and
 * exits with its code. Ctrl-C stops a watch (exit 130; the rollout itself goes on).
 */
import { runCli, EXIT } from './program';

const stopper = new AbortController();
let interrupted = false;
process.on('SIGINT', () => {
  if (interrupted) process.exit(EXIT.interrupted); // a second Ctrl-C: now
  interrupted = true;
  stopper.abort();
});
// `model-canary list | head`: the reader went away; nothing left to say.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: stopper.signal }).then(
  (code) => {
    process.exitCode = interrupted && code === EXIT.ok ? EXIT.interrupted : code;
  },
  (err: unknown) => {
    process.stderr.write(`model-canary: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = EXIT.error;
  },
);
