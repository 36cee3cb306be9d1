/**
 * Runs the gateway as a process: `npx tsx src/gateway/main.ts` (or `npm run gateway`).
 * Settings come from the environment through src/config.ts (`loadConfig().gateway`): GATEWAY_PORT
 * (8080), GATEWAY_HOST (127.0.0.1), DATA_DIR (.data), GATEWAY_ADMIN_TOKEN,
 * GATEWAY_UPSTREAM_TIMEOUT_MS (60000), the limits GATEWAY_HEADERS_TIMEOUT_MS,
 * GATEWAY_REQUEST_TIMEOUT_MS, GATEWAY_BODY_IDLE_TIMEOUT_MS, GATEWAY_UPSTREAM_CONNECTIONS,
 * GATEWAY_UPSTREAM_MAX_PENDING, GATEWAY_UPSTREAM_MAX_UPLOADS, GATEWAY_METRICS_RETENTION_MS, and for
 * LLM metering and shadow steps GATEWAY_BODY_COPY_BYTES, GATEWAY_MIRROR_MAX_IN_FLIGHT,
 * GATEWAY_EVALUATOR_MAX_IN_FLIGHT, GATEWAY_EVALUATOR_TIMEOUT_MS (README.md, "Gateway limits"),
 * LOG_LEVEL (info). An invalid value stops it with a message
 * naming the variable.
 */
import pino from 'pino';
import { loadConfig } from '../config';
import { startGateway } from './server';

async function main(): Promise<void> {
  const config = loadConfig();
  const settings = config.gateway;
  const logger = pino({ name: 'gateway', level: process.env.LOG_LEVEL ?? 'info' });
  const gateway = await startGateway({
    port: settings.port,
    host: settings.host,
    dataDir: config.dataDir,
    adminToken: config.gatewayAdminToken,
    upstreamTimeoutMs: settings.upstreamTimeoutMs,
    headersTimeoutMs: settings.headersTimeoutMs,
    requestTimeoutMs: settings.requestTimeoutMs,
    bodyIdleTimeoutMs: settings.bodyIdleTimeoutMs,
    metricsRetentionMs: settings.metricsRetentionMs,
    bodyCopyBytes: settings.bodyCopyBytes,
    mirrorMaxInFlight: settings.mirrorMaxInFlight,
    evaluatorMaxInFlight: settings.evaluatorMaxInFlight,
    evaluatorTimeoutMs: settings.evaluatorTimeoutMs,
    pool: {
      connections: settings.upstreamConnections,
      maxPending: settings.upstreamMaxPending,
      maxUploads: settings.upstreamMaxUploads,
    },
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
