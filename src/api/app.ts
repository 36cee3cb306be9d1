/**
 * The REST API (design.md, "REST API (contract, v1)"): an Express app over one shared Temporal
 * client. `createApp` does no I/O of its own, so tests mount it on any port.
 */
import express, { type Application, type Request, type RequestHandler } from 'express';
import type { Client } from '@temporalio/client';
import pino, { type Logger } from 'pino';
import type { RoutingSpec, TrafficRouter } from '../activities';
import { LEGACY_TOKEN_NAME, hashApiToken, type Config } from '../config';
import { tokenAuth } from './auth';
import { ApiError, bodyError, clip, errorHandler, notFoundRoute, toApiError, validate } from './errors';
import { openApiDocument } from './openapi';
import { RolloutService } from './rollout-service';
import { JSON_TYPES, noQuery, rolloutsRouter } from './rollouts';

export const BODY_LIMIT = '1mb';

export interface AppOptions {
  client: Client;
  /**
   * `apiTokens` (loadConfig: API_TOKENS_FILE / API_TOKENS / API_TOKEN) say who may read and act;
   * a bare `apiToken` is an operator named "api-token" (when `apiTokens` does not have it already).
   * Neither: the API is open.
   */
  config: Pick<Config, 'namespace' | 'taskQueue' | 'temporalUiUrl'> & Partial<Pick<Config, 'apiToken' | 'apiTokens' | 'urlAllowList'>>;
  /** The traffic router a start reads the target's live route from, for its spec's `routing` (main.ts: the registry's). */
  routerFor: (routing: RoutingSpec) => TrafficRouter;
  /** Silent when omitted. */
  logger?: Logger;
  /** Overrides for the Temporal call timeouts (ms). */
  queryTimeoutMs?: number;
  updateTimeoutMs?: number;
}

export function createApp({ client, config, routerFor, logger = pino({ level: 'silent' }), ...timeouts }: AppOptions): Application {
  const service = new RolloutService({ client, config, routerFor, ...timeouts });
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', false);

  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      logger.info({ method: req.method, url: req.originalUrl, status: res.statusCode, ms: Math.round(ms * 10) / 10 }, 'request');
    });
    next();
  });

  app.get('/healthz', async (req, res) => {
    validate(noQuery, req.query, 'query');
    try {
      await client.connection.withDeadline(Date.now() + 2_000, () =>
        client.workflowService.describeNamespace({ namespace: config.namespace }),
      );
      res.json({ ok: true, temporal: { ok: true, namespace: config.namespace } });
    } catch (err) {
      const message = toApiError(err)?.message ?? (err instanceof Error ? err.message : String(err));
      res.status(503).json({
        ok: false,
        temporal: { ok: false, namespace: config.namespace },
        error: { code: 'temporal_unavailable', message: `Temporal is not reachable: ${message}` },
      });
    }
  });

  // The API's description, not its data: like /healthz, served without the token.
  app.get('/v1/openapi.json', (req, res) => {
    validate(noQuery, req.query, 'query');
    res.json(openApiDocument());
  });

  const v1 = express.Router();
  const tokens = apiTokensOf(config);
  if (tokens.length > 0) v1.use(tokenAuth(tokens));
  v1.use(jsonOnly, jsonBody());
  v1.use('/rollouts', rolloutsRouter(service, { urlAllowList: config.urlAllowList }));
  app.use('/v1', v1);

  app.use(notFoundRoute);
  app.use(errorHandler(logger));
  return app;
}

/** The tokens the API takes: `apiTokens`, and `apiToken` as the operator "api-token" unless already among them. */
export function apiTokensOf(config: Partial<Pick<Config, 'apiToken' | 'apiTokens'>>): NonNullable<Config['apiTokens']> {
  const tokens = [...(config.apiTokens ?? [])];
  if (config.apiToken) {
    const sha256 = hashApiToken(config.apiToken);
    if (!tokens.some((t) => t.sha256 === sha256)) tokens.push({ name: LEGACY_TOKEN_NAME, role: 'operator', sha256 });
  }
  return tokens;
}

/** A body in any other type is refused before it is read (no body, no type: nothing to refuse). */
const jsonOnly: RequestHandler = (req, _res, next) => {
  const type = req.headers['content-type'];
  // `req.is` is null without a body, false for a body of another type.
  const refused = type !== undefined && req.is(JSON_TYPES) === false;
  next(refused ? new ApiError(415, 'unsupported_media_type', `content-type "${clip(type ?? '')}" is not accepted; send the body as JSON, with Content-Type: application/json`) : undefined);
};

/**
 * JSON, also when sent as curl's default form type (`curl -d @spec.json`) or with no type. A
 * body that cannot be read (corrupt gzip, bad charset...) is the client's error, never a 500.
 */
function jsonBody(): RequestHandler {
  const parse = express.json({ limit: BODY_LIMIT, type: (req) => !req.headers['content-type'] || Boolean((req as Request).is(JSON_TYPES)) });
  return (req, res, next) => {
    parse(req, res, (err?: unknown) => next(err === undefined ? undefined : bodyError(err, req.headers['content-encoding'])));
  };
}
