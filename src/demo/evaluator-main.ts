/**
 * DEMO ONLY — runs the rule-based demo evaluator (src/demo/evaluator.ts):
 * `npm run demo:evaluator -- --port 9100` (or `tsx src/demo/evaluator-main.ts --port 9100`).
 * Flags (or env): --port (EVALUATOR_PORT, 9100; 0 = a free one), --host (EVALUATOR_HOST, 127.0.0.1).
 */
import { parseArgs } from 'node:util';
import { startEvaluator } from './evaluator';

async function main(): Promise<void> {
  const { values } = parseArgs({ args: process.argv.slice(2), options: { port: { type: 'string' }, host: { type: 'string' } }, strict: true });
  const portText = values.port ?? process.env.EVALUATOR_PORT ?? '9100';
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port / EVALUATOR_PORT must be a port number, got "${portText}"`);
  const evaluator = await startEvaluator({ port, host: values.host ?? process.env.EVALUATOR_HOST ?? '127.0.0.1' });
  console.log(JSON.stringify({ msg: 'demo evaluator listening', url: evaluator.url }));
  const stop = () => void evaluator.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
