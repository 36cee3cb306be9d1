/**
 * The API's one error shape, `{"error": {"code", "message", "issues"?}}`, and the mapping of
 * everything that can go wrong (malformed HTTP, body parsing, input validation, Temporal client
 * errors, bugs) onto it. Client errors are 4xx naming what to fix; 500 is kept for our bugs.
 */
import { STATUS_CODES } from 'node:http';
import zlib from 'node:zlib';
import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import { ServiceError, WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import { NamespaceNotFoundError } from '@temporalio/common';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { TrafficRoute } from '../activities/types';
import type { SpecIssue } from '../spec';

export type ErrorCode =
  | 'invalid_spec'
  | 'invalid_json'
  | 'invalid_request'
  | 'unsupported_media_type'
  | 'payload_too_large'
  | 'headers_too_large'
  | 'expectation_failed'
  | 'method_not_allowed'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'baseline_mismatch'
  | 'idempotency_key_reused'
  | 'not_applicable'
  | 'timeout'
  | 'workflow_task_failing'
  | 'temporal_unavailable'
  | 'router_unavailable'
  | 'internal';

export interface ErrorBody {
  error: { code: ErrorCode; message: string; issues?: SpecIssue[] } & ErrorDetails;
}

/** What some errors add to the envelope beside code and message. */
export interface ErrorDetails {
  /** `baseline_mismatch`: the route the target serves now. */
  live?: TrafficRoute;
}

/** An error meant for the client: its status, code and message (and details) are sent as they are. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly issues?: SpecIssue[],
    readonly details?: ErrorDetails,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function errorBody(err: ApiError): ErrorBody {
  const body: ErrorBody = { error: { code: err.code, message: err.message, ...err.details } };
  if (err.issues) body.error.issues = err.issues;
  return body;
}

export function sendError(res: Response, err: ApiError): void {
  if (err.status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="model-canary"');
  res.status(err.status).json(errorBody(err));
}

/**
 * The same envelope as a complete raw HTTP/1.1 response, for the socket-level errors that
 * happen before Express has a request (see server.ts); the connection is closed after it.
 */
export function rawErrorResponse(err: ApiError): string {
  const body = JSON.stringify(errorBody(err));
  return (
    `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? 'Error'}\r\n` +
    'content-type: application/json; charset=utf-8\r\n' +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    'connection: close\r\n\r\n' +
    body
  );
}

// ---- validation: zod issues → 400 with one issue per field ----

/** Listed issues per response: a 1 MB array of wrong steps must not answer with megabytes. */
export const MAX_ISSUES = 50;
/** Issue messages may quote the client's value; a huge value is cut to this many characters. */
const MAX_MESSAGE = 300;

/** A 400 naming every problem (up to MAX_ISSUES) with its path, and a one-line summary. */
export function invalidInput(code: 'invalid_spec' | 'invalid_request', what: string, issues: SpecIssue[]): ApiError {
  const listed = issues.slice(0, MAX_ISSUES).map((i) => ({ path: clip(i.path), message: clip(i.message) }));
  const more = issues.length > listed.length ? ` (the first ${listed.length} of ${issues.length} issues)` : '';
  const summary = listed.map((i) => `${i.path}: ${i.message}`).join('; ');
  return new ApiError(400, code, `${what}${more}: ${summary}`, listed);
}

export type InputKind = 'query' | 'body';

const KIND: Record<InputKind, { what: string; unknown: string }> = {
  query: { what: 'invalid query', unknown: 'unknown query parameter' },
  body: { what: 'invalid request body', unknown: 'unknown field' },
};

/** Parses `input` with `schema` or throws a 400 `invalid_request` naming each bad field. */
export function validate<T extends z.ZodType>(schema: T, input: unknown, kind: InputKind): z.output<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw invalidInput('invalid_request', KIND[kind].what, issuesOf(result.error, schema, kind));
}

/** zod issues as path + message; each unknown key is an issue of its own, at its own path. */
function issuesOf(error: z.ZodError, schema: z.ZodType, kind: InputKind): SpecIssue[] {
  const known = schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
  const expected = known.length > 0 ? `expected ${known.join(', ')}` : kind === 'query' ? 'this route takes no query parameters' : 'expected none';
  return error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ path: pathOf([...issue.path, key]), message: `${KIND[kind].unknown} "${key}"; ${expected}` }))
      : [{ path: pathOf(issue.path), message: issue.message }],
  );
}

function pathOf(path: readonly PropertyKey[]): string {
  return path.map(String).join('.') || '(root)';
}

/** `text`, cut to a readable length when a client sent something huge. */
export function clip(text: string): string {
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}… (${text.length} characters)` : text;
}

// ---- thrown errors → ApiError ----

/** Errors from body-parser (http-errors) carry a `type`, an HTTP status and details. */
interface HttpError extends Error {
  type?: string;
  status?: number;
  expose?: boolean;
  limit?: number;
  encoding?: string;
  charset?: string;
}

/** What body-parser decodes (zstd where this Node has it). */
const ENCODINGS = ['identity', 'gzip', 'deflate', 'br', ...('createZstdDecompress' in zlib ? ['zstd'] : [])];

/** Maps any thrown value to the ApiError the client sees; undefined for unexpected errors. */
export function toApiError(err: unknown): ApiError | undefined {
  if (err instanceof ApiError) return err;
  if (!(err instanceof Error)) return undefined;
  return httpError(err as HttpError) ?? temporalError(err);
}

function httpError(err: HttpError): ApiError | undefined {
  switch (err.type) {
    case 'entity.parse.failed':
      return new ApiError(400, 'invalid_json', `request body is not valid JSON: ${err.message}`);
    case 'entity.too.large':
      return new ApiError(413, 'payload_too_large', `request body is larger than the limit of ${formatBytes(err.limit)}`);
    case 'encoding.unsupported':
      return new ApiError(415, 'unsupported_media_type', `content-encoding "${err.encoding ?? ''}" is not supported; send the body as one of ${ENCODINGS.join(', ')}`);
    case 'charset.unsupported':
      return new ApiError(415, 'unsupported_media_type', `charset "${err.charset ?? ''}" is not supported; send JSON as UTF-8 (Content-Type: application/json)`);
    case 'request.aborted':
      return new ApiError(400, 'invalid_request', 'request aborted by the client');
    case 'request.size.invalid':
    case 'stream.encoding.set':
      return new ApiError(400, 'invalid_request', err.message);
  }
  // The router's decodeURIComponent of a path parameter.
  if (err instanceof URIError && err.status === 400) {
    return new ApiError(400, 'invalid_request', `the URL path has a malformed percent-escape (${err.message}); escape "%" as %25`);
  }
  // Any other http-errors client error (its message is meant to be shown: `expose`).
  if (err.expose === true && typeof err.status === 'number' && err.status >= 400 && err.status < 500) {
    return new ApiError(err.status, codeForStatus(err.status), err.message);
  }
  return undefined;
}

function temporalError(err: Error): ApiError | undefined {
  if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
    return new ApiError(504, 'timeout', 'the rollout did not answer in time; is a worker polling its task queue?');
  }
  if (err instanceof NamespaceNotFoundError) {
    return new ApiError(503, 'temporal_unavailable', err.message);
  }
  const cause = err instanceof ServiceError ? err.cause : undefined;
  if (isUnavailable(cause)) {
    return new ApiError(503, 'temporal_unavailable', `Temporal is unavailable: ${cause?.message ?? err.message}`);
  }
  if (isFailedPrecondition(cause)) return failedPrecondition(grpcDetails(cause));
  if (isInvalidArgument(cause) && /search attribute/i.test(cause?.message ?? '')) {
    // An operator's fix (register the attributes), so say what Temporal said.
    return new ApiError(500, 'internal', `Temporal rejected the request: ${cause?.message}; register the rollout search attributes (see scripts/serve.ts)`);
  }
  if (isDeadlineExceeded(err) || isDeadlineExceeded(cause)) {
    return new ApiError(504, 'timeout', 'Temporal did not answer in time; is a worker polling the task queue?');
  }
  return undefined;
}

/**
 * FAILED_PRECONDITION: the workflow cannot take the request in its state. The common case is an
 * update to a rollout whose workflow task fails on every attempt (a bug or non-determinism in
 * the worker's workflow code): no request can succeed until an operator acts, so 503 saying how.
 */
function failedPrecondition(details: string): ApiError {
  if (/workflow task in failed state/i.test(details)) return workflowTaskFailing(`Temporal: ${details}`);
  return new ApiError(409, 'not_applicable', `the rollout's workflow cannot take this request in its state (Temporal: ${details})`);
}

/** The rollout's workflow task fails on every attempt: what it means and what an operator can do. */
export function workflowTaskFailing(evidence: string): ApiError {
  return new ApiError(
    503,
    'workflow_task_failing',
    `the rollout's workflow task is failing on the worker, so the rollout cannot take requests now (${evidence}); ` +
      'see the failure in its history in the Temporal UI, then fix or roll back the worker, ' +
      'or terminate the rollout (temporal workflow terminate --workflow-id <id>)',
  );
}

/**
 * Reading a body fails only because of the request, so everything the body parser throws is a
 * 4xx: the known errors by type, a corrupt gzip/deflate/br stream (a zlib error, no type) and
 * anything else as 400.
 */
export function bodyError(err: unknown, contentEncoding: string | undefined): ApiError {
  const message = err instanceof Error ? err.message : String(err);
  const encoding = contentEncoding?.trim().toLowerCase() || 'identity';
  if (!(err as HttpError | undefined)?.type && encoding !== 'identity') {
    return new ApiError(400, 'invalid_request', `the request body is not valid ${encoding} data (${message}); check the body and its content-encoding`);
  }
  return toApiError(err) ?? new ApiError(400, 'invalid_request', `the request body could not be read: ${message}`);
}

/** A Node HTTP parser error (`clientError`): what Node would answer, in our envelope. */
export function parserError(err: NodeJS.ErrnoException & { reason?: string }, maxHeaderSize: number): ApiError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new ApiError(431, 'headers_too_large', `the request line and headers are larger than the limit of ${formatBytes(maxHeaderSize)}`);
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new ApiError(413, 'payload_too_large', 'the chunk extensions of the request body are too large');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new ApiError(408, 'timeout', 'the request was not received in time; send the headers and body without pausing');
  }
  return new ApiError(400, 'invalid_request', `malformed HTTP request: ${err.reason ?? err.message}`);
}

function codeForStatus(status: number): ErrorCode {
  switch (status) {
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
      return 'not_found';
    case 408:
      return 'timeout';
    case 405:
      return 'method_not_allowed';
    case 409:
      return 'conflict';
    case 413:
      return 'payload_too_large';
    case 415:
      return 'unsupported_media_type';
    case 417:
      return 'expectation_failed';
    case 431:
      return 'headers_too_large';
    default:
      return 'invalid_request';
  }
}

const GRPC_INVALID_ARGUMENT = 3;
const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_FAILED_PRECONDITION = 9;
const GRPC_UNAVAILABLE = 14;

function grpcCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** The server's own words: grpc-js puts them in `details`, `message` adds "9 FAILED_PRECONDITION: ". */
function grpcDetails(err: unknown): string {
  const { details, message } = (err ?? {}) as { details?: unknown; message?: unknown };
  return typeof details === 'string' && details ? details : String(message ?? '');
}

export function isDeadlineExceeded(err: unknown): boolean {
  return grpcCode(err) === GRPC_DEADLINE_EXCEEDED;
}

function isInvalidArgument(err: unknown): boolean {
  return grpcCode(err) === GRPC_INVALID_ARGUMENT;
}

function isFailedPrecondition(err: unknown): boolean {
  return grpcCode(err) === GRPC_FAILED_PRECONDITION;
}

function isUnavailable(err: unknown): boolean {
  return grpcCode(err) === GRPC_UNAVAILABLE;
}

function formatBytes(bytes: number | undefined): string {
  if (!bytes) return 'the configured size';
  if (bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`;
  return bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} bytes`;
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
