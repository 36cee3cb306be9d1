/**
 * Runs the gateway as a process: `npx tsx src/gateway/main.ts` (or `npm run gateway`).
 * Env: GATEWAY_PORT (8080), GATEWAY_HOST (127.0.0.1), DATA_DIR (.data), GATEWAY_ADMIN_TOKEN,
 * GATEWAY_UPSTREAM_TIMEOUT_MS (60000), LOG_LEVEL (info).
 */
import pino from 'pino';
import { startGateway } from './server';

function intFromEnv(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got "${text}"`);
  return value;
}

async function main(): Promise<void> {
  const logger = pino({ name: 'gateway', level: process.env.LOG_LEVEL ?? 'info' });
  const gateway = await startGateway({
    port: intFromEnv('GATEWAY_PORT', 8080),
    host: process.env.GATEWAY_HOST || '127.0.0.1',
    dataDir: process.env.DATA_DIR || '.data',
    adminToken: process.env.GATEWAY_ADMIN_TOKEN || undefined,
    upstreamTimeoutMs: intFromEnv('GATEWAY_UPSTREAM_TIMEOUT_MS', 60_000),
    logger,
  });
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'gateway stopping');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    gateway.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'gateway close failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
