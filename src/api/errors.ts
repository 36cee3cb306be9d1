/**
 * The API's one error shape, `{"error": {"code", "message", "issues"?}}`, and the mapping of
 * everything that can go wrong (body parsing, Temporal client errors, bugs) onto it.
 */
import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import { ServiceError, WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import { NamespaceNotFoundError } from '@temporalio/common';
import type { Logger } from 'pino';
import type { SpecIssue } from '../spec';

export type ErrorCode =
  | 'invalid_spec'
  | 'invalid_json'
  | 'invalid_request'
  | 'unsupported_media_type'
  | 'payload_too_large'
  | 'unauthorized'
  | 'not_found'
  | 'conflict'
  | 'not_applicable'
  | 'timeout'
  | 'temporal_unavailable'
  | 'internal';

export interface ErrorBody {
  error: { code: ErrorCode; message: string; issues?: SpecIssue[] };
}

/** An error meant for the client: its status, code and message are sent as they are. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly issues?: SpecIssue[],
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function sendError(res: Response, err: ApiError): void {
  const body: ErrorBody = { error: { code: err.code, message: err.message } };
  if (err.issues) body.error.issues = err.issues;
  if (err.status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="model-canary"');
  res.status(err.status).json(body);
}

/** Body-parser errors carry a `type` and an HTTP status. */
interface HttpError extends Error {
  type?: string;
  status?: number;
  statusCode?: number;
  limit?: number;
}

/** Maps any thrown value to the ApiError the client sees; undefined for unexpected errors. */
export function toApiError(err: unknown): ApiError | undefined {
  if (err instanceof ApiError) return err;
  if (err instanceof Error) {
    const { type } = err as HttpError;
    switch (type) {
      case 'entity.parse.failed':
        return new ApiError(400, 'invalid_json', `request body is not valid JSON: ${err.message}`);
      case 'entity.too.large':
        return new ApiError(413, 'payload_too_large', `request body is larger than the limit of ${formatBytes((err as HttpError).limit)}`);
      case 'encoding.unsupported':
      case 'charset.unsupported':
        return new ApiError(415, 'unsupported_media_type', err.message);
      case 'request.aborted':
        return new ApiError(400, 'invalid_request', 'request aborted by the client');
      case 'request.size.invalid':
      case 'stream.encoding.set':
        return new ApiError(400, 'invalid_request', err.message);
    }
    if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
      return new ApiError(504, 'timeout', 'the rollout did not answer in time; is a worker polling its task queue?');
    }
    if (err instanceof NamespaceNotFoundError) {
      return new ApiError(503, 'temporal_unavailable', err.message);
    }
    if (err instanceof ServiceError && isUnavailable(err.cause)) {
      return new ApiError(503, 'temporal_unavailable', `Temporal is unavailable: ${err.cause?.message ?? err.message}`);
    }
    if (err instanceof ServiceError && isInvalidArgument(err.cause) && /search attribute/i.test(err.cause?.message ?? '')) {
      // An operator's fix (register the attributes), so say what Temporal said.
      return new ApiError(500, 'internal', `Temporal rejected the request: ${err.cause?.message}; register the rollout search attributes (see scripts/serve.ts)`);
    }
    if (isDeadlineExceeded(err) || (err instanceof ServiceError && isDeadlineExceeded(err.cause))) {
      return new ApiError(504, 'timeout', 'Temporal did not answer in time; is a worker polling the task queue?');
    }
  }
  return undefined;
}

const GRPC_INVALID_ARGUMENT = 3;
const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_UNAVAILABLE = 14;

function grpcCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

export function isDeadlineExceeded(err: unknown): boolean {
  return grpcCode(err) === GRPC_DEADLINE_EXCEEDED;
}

function isInvalidArgument(err: unknown): boolean {
  return grpcCode(err) === GRPC_INVALID_ARGUMENT;
}

function isUnavailable(err: unknown): boolean {
  return grpcCode(err) === GRPC_UNAVAILABLE;
}

function formatBytes(bytes: number | undefined): string {
  if (!bytes) return 'the configured size';
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${bytes} bytes`;
}

export const notFoundRoute: RequestHandler = (req, _res, next) => {
  next(new ApiError(404, 'not_found', `no route for ${req.method} ${req.path}`));
};

/** The last handler: known errors as they are, anything else as a 500 without internals. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, next) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const apiError = toApiError(err);
    if (apiError) {
      if (apiError.status >= 500) logger.warn({ err, method: req.method, url: req.originalUrl }, apiError.message);
      sendError(res, apiError);
      return;
    }
    logger.error({ err, method: req.method, url: req.originalUrl }, 'unexpected error');
    sendError(res, new ApiError(500, 'internal', 'internal error; see the API log'));
  };
}
