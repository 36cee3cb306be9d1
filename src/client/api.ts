/**
 * The one REST client of the model-canary API (README "REST API (v1)"), shared by the operator
 * CLI (src/cli) and the demo (src/demo/show.ts). Typed with the API's own shapes; every non-2xx
 * answer becomes an `ApiResponseError` carrying the API's `{error: {code, message, issues}}`
 * envelope, and an API that cannot be reached an `ApiUnreachableError`.
 *
 * Settings: `API_URL` (default http://127.0.0.1:3000) and `API_TOKEN` (sent as
 * `Authorization: Bearer …`), or the options of `createClient`.
 */
import { randomUUID } from 'node:crypto';
import type { Phase, RolloutStatus, RolloutSummary } from '../workflows/status';

export const DEFAULT_API_URL = 'http://127.0.0.1:3000';

/** The actions `POST /v1/rollouts/:id/:action` takes (as the API's ACTIONS). */
export const ACTIONS = ['pause', 'resume', 'abort', 'promote', 'approve'] as const;
export type Action = (typeof ACTIONS)[number];

/** Every phase, in lifecycle order (as the API's PHASES). */
export const PHASES: readonly Phase[] = ['progressing', 'paused', 'awaiting_approval', 'rolling_back', 'promoted', 'rolled_back', 'aborted', 'failed'];

/** One problem the API found with the input: where (dotted path, e.g. `steps.1.weight`) and what. */
export interface ApiIssue {
  path: string;
  message: string;
}

/** The API's error envelope. */
export interface ApiErrorBody {
  error: { code: string; message: string; issues?: ApiIssue[] };
}

/** A non-2xx answer of the API, with its envelope (or, from something that is not our API, the raw text). */
export class ApiResponseError extends Error {
  readonly code: string;
  readonly issues: ApiIssue[];
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly body: unknown,
  ) {
    const envelope = errorEnvelope(body);
    super(envelope ? envelope.message : `${method} ${path} answered ${status}${typeof body === 'string' && body ? `: ${body.slice(0, 200)}` : ''}`);
    this.name = 'ApiResponseError';
    this.code = envelope?.code ?? `http_${status}`;
    this.issues = envelope?.issues ?? [];
  }

  /** One line: the request, the status and the API's message, with its issues (`path: message`). */
  get detail(): string {
    const issues = this.issues.map((i) => `${i.path}: ${i.message}`).join('; ');
    return `${this.method} ${this.path} answered ${this.status} ${this.code}: ${this.message}${issues ? ` (${issues})` : ''}`;
  }
}

/** The API could not be reached at all (refused, timed out, DNS), or answered something that is not JSON. */
export class ApiUnreachableError extends Error {
  constructor(
    readonly baseUrl: string,
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
    this.name = 'ApiUnreachableError';
  }
}

function errorEnvelope(body: unknown): ApiErrorBody['error'] | undefined {
  const error = (body as Partial<ApiErrorBody> | undefined)?.error;
  if (!error || typeof error !== 'object' || typeof error.message !== 'string') return undefined;
  return { code: typeof error.code === 'string' ? error.code : 'error', message: error.message, ...(Array.isArray(error.issues) ? { issues: error.issues } : {}) };
}

export interface ClientOptions {
  /** Base URL of the API (default `API_URL`, else http://127.0.0.1:3000). */
  baseUrl?: string;
  /** Bearer token (default `API_TOKEN`). */
  token?: string;
  /** Longest wait for one request, ms (default 30 s). */
  timeoutMs?: number;
}

export interface ListFilter {
  target?: string;
  phase?: string;
  limit?: number;
}

export interface GetOptions {
  runId?: string;
  /** The newest `decisions` decisions (with `seq` below `before`): the API's decision paging. */
  decisions?: number;
  before?: number;
}

export interface CanaryClient {
  readonly baseUrl: string;
  /**
   * POST /v1/rollouts (201; 200 when a retry found the rollout it had started). `spec` goes as it
   * is: the API validates it. It carries an Idempotency-Key (the one given, else a new UUID), so
   * an answer lost to the network or a restarting API is retried safely: the API is unreachable,
   * or answers 502/503 `temporal_unavailable`/504, and the start is sent again, up to
   * `startAttempts` times in all, never starting a second rollout. `replayed`: the key had started
   * this rollout already (this start, retried, or an earlier one with the same key).
   */
  start(spec: unknown, options?: StartOptions): Promise<StartedRollout>;
  /** GET /v1/rollouts. */
  list(filter?: ListFilter): Promise<RolloutSummary[]>;
  /** GET /v1/rollouts/:id. */
  get(id: string, options?: GetOptions): Promise<RolloutStatus>;
  /** POST /v1/rollouts/:id/:action (202); `reason` only for abort. */
  act(action: Action, id: string, options?: { reason?: string }): Promise<RolloutStatus>;
  /** GET /healthz: whether the API (and Temporal behind it) answers. */
  healthy(): Promise<boolean>;
  /** Any request; resolves with the JSON body of a 2xx answer, throws ApiResponseError otherwise. */
  request<T>(method: string, path: string, body?: unknown): Promise<T>;
}

export interface StartedRollout {
  status: RolloutStatus;
  /** The API answered 200 `Idempotent-Replayed`: the Idempotency-Key had started this rollout before. */
  replayed: boolean;
}

export interface StartOptions {
  idempotencyKey?: string;
  /** Attempts in all (default 3), 1 s then 2 s apart. */
  startAttempts?: number;
}

/** A failed start that can be sent again with its Idempotency-Key: it may not have reached Temporal. */
function retryableStart(err: unknown): boolean {
  if (err instanceof ApiUnreachableError) return true;
  if (!(err instanceof ApiResponseError)) return false;
  return err.status === 502 || err.status === 504 || (err.status === 503 && err.code === 'temporal_unavailable');
}

/** The rollout id of a target (`rollout-<target>`); an argument that already is an id stays as it is. */
export function rolloutId(targetOrId: string): string {
  return targetOrId.startsWith(ROLLOUT_ID_PREFIX) ? targetOrId : `${ROLLOUT_ID_PREFIX}${targetOrId}`;
}
export const ROLLOUT_ID_PREFIX = 'rollout-';

/** `baseUrl` without a trailing slash; throws on something that is not an http(s) URL. */
export function normalizeBaseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`the API URL must be an http(s) URL such as ${DEFAULT_API_URL}, got "${raw}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`the API URL must be http(s), got "${raw}"`);
  return raw.replace(/\/+$/, '');
}

export function createClient(options: ClientOptions = {}, env: NodeJS.ProcessEnv = process.env): CanaryClient {
  const baseUrl = normalizeBaseUrl(options.baseUrl ?? (env.API_URL || DEFAULT_API_URL));
  const token = options.token ?? (env.API_TOKEN || undefined);
  const timeoutMs = options.timeoutMs ?? 30_000;

  async function request<T>(method: string, path: string, body?: unknown, extraHeaders: Record<string, string> = {}): Promise<T> {
    return (await exchange<T>(method, path, body, extraHeaders)).body;
  }

  async function exchange<T>(method: string, path: string, body?: unknown, extraHeaders: Record<string, string> = {}): Promise<{ body: T; headers: Headers }> {
    const headers: Record<string, string> = { accept: 'application/json', ...extraHeaders };
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    let text: string;
    try {
      res = await fetch(`${baseUrl}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
      text = await res.text();
    } catch (err) {
      throw new ApiUnreachableError(baseUrl, `cannot reach the API at ${baseUrl}: ${describeFetchError(err)}`, err);
    }
    let parsed: unknown = text;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        if (res.ok) throw new ApiUnreachableError(baseUrl, `${method} ${baseUrl}${path} answered ${res.status} with something that is not JSON (is ${baseUrl} the model-canary API?)`);
      }
    } else {
      parsed = undefined;
    }
    if (!res.ok) throw new ApiResponseError(method, path, res.status, parsed);
    return { body: parsed as T, headers: res.headers };
  }

  const idPath = (id: string) => `/v1/rollouts/${encodeURIComponent(id)}`;
  return {
    baseUrl,
    request,
    async start(spec, options = {}) {
      const headers = { 'idempotency-key': options.idempotencyKey ?? randomUUID() };
      const attempts = options.startAttempts ?? 3;
      for (let attempt = 1; ; attempt++) {
        try {
          const { body, headers: answered } = await exchange<RolloutStatus>('POST', '/v1/rollouts', spec, headers);
          return { status: body, replayed: answered.get('idempotent-replayed') === 'true' };
        } catch (err) {
          if (attempt >= attempts || !retryableStart(err)) throw err;
          await new Promise((resolve) => setTimeout(resolve, 1000 * 2 ** (attempt - 1)));
        }
      }
    },
    async list(filter = {}) {
      const query = new URLSearchParams();
      if (filter.target) query.set('target', filter.target);
      if (filter.phase) query.set('phase', filter.phase);
      if (filter.limit !== undefined) query.set('limit', String(filter.limit));
      const qs = query.toString();
      return (await request<{ rollouts: RolloutSummary[] }>('GET', `/v1/rollouts${qs ? `?${qs}` : ''}`)).rollouts;
    },
    get(id, options = {}) {
      const query = new URLSearchParams();
      if (options.runId) query.set('runId', options.runId);
      if (options.decisions !== undefined) query.set('decisions', String(options.decisions));
      if (options.before !== undefined) query.set('before', String(options.before));
      const qs = query.toString();
      return request<RolloutStatus>('GET', `${idPath(id)}${qs ? `?${qs}` : ''}`);
    },
    act(action, id, options = {}) {
      const body = action === 'abort' && options.reason !== undefined ? { reason: options.reason } : undefined;
      return request<RolloutStatus>('POST', `${idPath(id)}/${action}`, body);
    },
    async healthy() {
      try {
        await request('GET', '/healthz');
        return true;
      } catch {
        return false;
      }
    },
  };
}

/** fetch's "fetch failed" hides the reason in `cause` (ECONNREFUSED, a timeout, ...). */
function describeFetchError(err: unknown): string {
  if (err instanceof Error && err.name === 'TimeoutError') return 'no answer in time';
  const cause = (err as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  if (cause?.code) return cause.code === 'ECONNREFUSED' ? 'connection refused (is the API running? `npm run serve`)' : `${cause.code}${cause.message ? ` (${cause.message})` : ''}`;
  if (cause?.message) return cause.message;
  return err instanceof Error ? err.message : String(err);
}
