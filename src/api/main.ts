/**
 * The API process: one Temporal connection and client, the Express app on API_HOST:API_PORT,
 * pino logs, and a graceful stop on SIGINT/SIGTERM (server first, then the connection).
 */
import { Client, Connection } from '@temporalio/client';
import pino from 'pino';
import { registryRouters } from '../activities';
import { adapterSettings, describeTemporalSecurity, loadConfig, temporalConnectionOptions, type Config } from '../config';
import { connectError, connectErrorHint, probeTls } from '../temporal-connect';
import { createApp } from './app';
import { listenApi } from './server';

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = pino({ name: 'api', level: process.env.LOG_LEVEL || 'info' });
  const connection = await connectWithRetry(config, logger);
  const client = new Client({ connection, namespace: config.namespace });
  // The routers the workers change are the ones whose live routes a start is checked against.
  const app = createApp({ client, config, routerFor: registryRouters(adapterSettings(config)), logger });

  const api = await listenApi(app, { port: config.apiPort, host: config.apiHost });
  logger.info(
    { url: api.url, temporal: config.temporalAddress, temporalSecurity: describeTemporalSecurity(config), namespace: config.namespace, auth: config.apiTokens.length > 0 ? { tokens: config.apiTokens.map((t) => `${t.name} (${t.role})`) } : false },
    `API listening on ${api.url}`,
  );
  if (config.apiTokens.length === 0 && !isLoopback(config.apiHost)) {
    logger.warn({ host: config.apiHost }, 'the API has no token (API_TOKENS_FILE, API_TOKENS or API_TOKEN) and listens beyond loopback: anyone who can reach it can start and abort rollouts');
  }

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping API');
    api
      .close(5_000)
      .then(() => connection.close())
      .catch((err) => logger.warn({ err }, 'closing the Temporal connection failed'))
      .finally(() => {
        logger.info('API stopped');
        process.exit(0);
      });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/**
 * The Temporal server may still be starting (npm run serve): retry for a while. A refusal that no
 * retry fixes (credentials, certificates: see temporal-connect.ts) ends it at once.
 */
async function connectWithRetry(config: Config, logger: pino.Logger): Promise<Connection> {
  const address = config.temporalAddress;
  // TLS files are read here, at startup: a missing one is an error naming its variable.
  const options = temporalConnectionOptions(config);
  const deadline = Date.now() + 60_000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await Connection.connect(options);
    } catch (err) {
      let message = err instanceof Error ? [err.message, (err as Error & { cause?: unknown }).cause].filter(Boolean).map(String).join(': ') : String(err);
      // A TLS handshake failure is only "Failed to connect before the deadline" here: ask why.
      const handshake = config.temporalTls && /before the deadline/.test(message) ? await probeTls(config) : undefined;
      if (handshake) message = `${message}; ${handshake}`;
      if (Date.now() > deadline || connectErrorHint(message, config)) throw connectError(handshake ? new Error(message) : err, config);
      if (attempt === 1) logger.info({ address, security: describeTemporalSecurity(config), error: message }, 'waiting for Temporal');
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

main().catch((err) => {
  // A connection or settings error is one line that says what to fix; anything else, with its stack.
  console.error(err instanceof Error && /^(cannot connect to Temporal|TEMPORAL_|API_TOKEN|API tokens )/.test(err.message) ? `api: ${err.message}` : err);
  process.exit(1);
});
