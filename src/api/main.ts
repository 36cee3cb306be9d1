/**
 * The API process: one Temporal connection and client, the Express app on API_HOST:API_PORT,
 * pino logs, and a graceful stop on SIGINT/SIGTERM (server first, then the connection).
 */
import { Client, Connection } from '@temporalio/client';
import pino from 'pino';
import { gatewayTrafficRouter } from '../activities/gateway-router';
import { loadConfig } from '../config';
import { createApp } from './app';
import { listenApi } from './server';

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = pino({ name: 'api', level: process.env.LOG_LEVEL || 'info' });
  const connection = await connectWithRetry(config.temporalAddress, logger);
  const client = new Client({ connection, namespace: config.namespace });
  // The router the workers change is the one whose live routes a start is checked against.
  const router = gatewayTrafficRouter({ url: config.gatewayUrl, adminToken: config.gatewayAdminToken });
  const app = createApp({ client, config, router, logger });

  const api = await listenApi(app, { port: config.apiPort, host: config.apiHost });
  logger.info(
    { url: api.url, temporal: config.temporalAddress, namespace: config.namespace, auth: Boolean(config.apiToken) },
    `API listening on ${api.url}`,
  );

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

/** The Temporal server may still be starting (npm run serve): retry for a while. */
async function connectWithRetry(address: string, logger: pino.Logger): Promise<Connection> {
  const deadline = Date.now() + 60_000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await Connection.connect({ address });
    } catch (err) {
      if (Date.now() > deadline) throw err;
      if (attempt === 1) logger.info({ address }, 'waiting for Temporal');
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
