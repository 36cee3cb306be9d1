/**
 * `npm run serve`: the stack alone, no demo (design.md, "Commands"). The stack itself is
 * scripts/stack.ts (`startStack`): gateway, Temporal dev server (unless TEMPORAL_ADDRESS names a
 * cluster), worker and API as child processes. Prints the URLs once the API answers; a child that
 * dies on its own is restarted with backoff while the others keep running (the gateway serves
 * throughout); on Ctrl-C / SIGTERM stops the children (Temporal last) and exits 0. Exits 1 only
 * when a child cannot start during boot (the stack says which and why).
 *
 * Temporal's frontend and its UI listen on 127.0.0.1 only; the UI is read-only (write actions
 * off) unless TEMPORAL_UI_WRITE_ACTIONS=true — the ready block says which (scripts/stack.ts).
 *
 * Env: DATA_DIR (.data), TEMPORAL_ADDRESS, TEMPORAL_PORT (7233), TEMPORAL_UI_PORT (8233),
 * TEMPORAL_UI_WRITE_ACTIONS (false), TEMPORAL_NAMESPACE, TEMPORAL_TLS, TEMPORAL_TLS_CA/CERT/KEY/SERVER_NAME, TEMPORAL_API_KEY (a cluster only;
 * src/config.ts), API_PORT (3000), API_HOST, GATEWAY_PORT (8080), plus what each child reads.
 */
import { startStack } from './stack';

function main(): void {
  const stack = startStack({ name: 'serve' });
  process.on('SIGINT', () => void stack.stop('SIGINT', 0));
  process.on('SIGTERM', () => void stack.stop('SIGTERM', 0));
  // The terminal went away: the dev server runs in a process group of its own and would not hear it.
  process.on('SIGHUP', () => void stack.stop('SIGHUP', 0));
  void stack.exited.then((code) => process.exit(code));
  stack.ready.then(
    () => {
      if (stack.stopping()) return;
      stack.log(`ready\n${stack.readyLines().map((l) => `  ${l}`).join('\n')}\n  Ctrl-C to stop`);
    },
    () => undefined, // the stack logged why and is stopping; `exited` ends the process
  );
}

try {
  main();
} catch (err) {
  console.error(err);
  process.exit(1);
}
