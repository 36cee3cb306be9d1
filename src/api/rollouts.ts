/** The /v1/rollouts routes: HTTP in, RolloutService calls, HTTP out. */
import { createHash } from 'node:crypto';
import { Router, type Request, type RequestHandler } from 'express';
import { z } from 'zod';
import { parseRolloutRequest, urlAllowListIssues, type UrlAllowList } from '../spec';
import { IDEMPOTENCY_KEY_PATTERN, IDEMPOTENCY_KEY_RULE, TARGET_PATTERN, TARGET_RULE } from '../spec/patterns';
import { rolloutWorkflowId } from '../workflows/messages';
import { callerName } from './auth';
import { ApiError, invalidInput, validate } from './errors';
import { ACTIONS, PHASES, isPhase, type Action, type Idempotency, type RolloutService } from './rollout-service';

/** A query value; an array (`?x=1&x=2`) means the parameter was repeated. */
const once = (name: string) => z.string({ error: `${name} must be given once, as a single value` });

/** Routes that take no query parameters still refuse them, so a typo is not silently ignored. */
export const noQuery = z.strictObject({});

export const listQuery = z.strictObject({
  target: once('target').regex(TARGET_PATTERN, `target must be ${TARGET_RULE}`).optional(),
  phase: once('phase').refine(isPhase, `phase must be one of ${PHASES.join(', ')}`).optional(),
  limit: once('limit')
    .regex(/^[0-9]{1,4}$/, 'limit must be a whole number between 1 and 1000')
    .transform(Number)
    .refine((n) => n >= 1 && n <= 1000, 'limit must be a whole number between 1 and 1000')
    .optional(),
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const wholeNumber = (name: string, max: number) =>
  once(name)
    .regex(/^[0-9]{1,9}$/, `${name} must be a whole number between 1 and ${max}`)
    .transform(Number)
    .refine((n) => n >= 1 && n <= max, `${name} must be a whole number between 1 and ${max}`);

export const getQuery = z.strictObject({
  runId: once('runId').regex(UUID, 'runId must be a Temporal run id: a UUID such as 0190f3c4-9b2e-7c3a-8f5d-2e4b6a8c0d1e').optional(),
  /** Page of decisions: the newest `decisions` with `seq` below `before` (a decision's seq; `decisionPage.nextBefore`). */
  decisions: wholeNumber('decisions', 1000).optional(),
  before: wholeNumber('before', 999_999_999).optional(),
});

export const abortBody = z.strictObject(
  { reason: z.string({ error: 'reason must be a string' }).max(1000, 'reason must be at most 1000 characters').optional() },
  { error: 'the body must be a JSON object such as {"reason": "..."}' },
);

/** The other actions take no arguments: no body, or `{}`. */
export const emptyBody = z.strictObject({}, { error: 'the body must be empty or {}' });

/** Bodies read as JSON: JSON itself, and curl's default for `-d` (form type) holding JSON. */
export const JSON_TYPES = ['application/json', 'application/x-www-form-urlencoded'];

const ID_PREFIX = rolloutWorkflowId('');

/** Every rollout id is the target's workflow id; anything else cannot name a rollout. */
function checkId(id: string): string {
  if (id.startsWith(ID_PREFIX) && TARGET_PATTERN.test(id.slice(ID_PREFIX.length))) return id;
  throw invalidInput('invalid_request', 'invalid rollout id', [
    { path: 'id', message: `id must be "${ID_PREFIX}" followed by the target, ${TARGET_RULE}` },
  ]);
}

/** The start's Idempotency-Key (optional) and its body's fingerprint; a malformed key is a 400. */
function idempotencyOf(req: Request): Idempotency | undefined {
  const key = req.headers['idempotency-key'];
  if (key === undefined) return undefined;
  if (typeof key !== 'string' || !IDEMPOTENCY_KEY_PATTERN.test(key)) {
    throw invalidInput('invalid_request', 'invalid Idempotency-Key header', [{ path: 'Idempotency-Key', message: IDEMPOTENCY_KEY_RULE }]);
  }
  return { key, request: createHash('sha256').update(canonicalJson(req.body)).digest('hex') };
}

/** JSON with object keys sorted: the same spec is the same fingerprint whatever its key order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** `urlAllowList` (URL_ALLOW_LIST): a start whose spec has a URL outside it is a 400 naming the field; nothing starts. */
export function rolloutsRouter(service: RolloutService, options: { urlAllowList?: UrlAllowList | undefined } = {}): Router {
  const router = Router();
  router.use(checkPathEscapes(['id', 'action']));

  router.post('/', async (req, res) => {
    validate(noQuery, req.query, 'query');
    // `baseline` may be left out: the service takes it from the target's live route.
    const parsed = parseRolloutRequest(req.body);
    if (!parsed.ok) throw invalidInput('invalid_spec', 'invalid rollout spec', parsed.issues);
    const refused = urlAllowListIssues(options.urlAllowList, parsed.request);
    if (refused.length > 0) throw invalidInput('invalid_spec', `invalid rollout spec: a URL outside ${options.urlAllowList!.setting}`, refused);
    const idempotency = idempotencyOf(req);
    const { status, replayed } = await service.start(parsed.request, { by: callerName(res), ...(idempotency ? { idempotency } : {}) });
    // A replayed start answers 200 with the rollout the key started: nothing new was created.
    if (replayed) res.setHeader('idempotent-replayed', 'true');
    res.status(replayed ? 200 : 201).json(status);
  });

  router.get('/', async (req, res) => {
    const query = validate(listQuery, req.query, 'query');
    const rollouts = await service.list({
      ...(query.target ? { target: query.target } : {}),
      ...(query.phase && isPhase(query.phase) ? { phase: query.phase } : {}),
      ...(query.limit ? { limit: query.limit } : {}),
    });
    res.json({ rollouts });
  });

  router.get('/:id', async (req, res) => {
    const id = checkId(req.params.id);
    const { runId, decisions, before } = validate(getQuery, req.query, 'query');
    res.json(await service.get(id, runId, { ...(decisions ? { limit: decisions } : {}), ...(before ? { before } : {}) }));
  });

  router.post('/:id/:action', async (req, res) => {
    const action = req.params.action;
    if (!isAction(action)) {
      throw new ApiError(404, 'not_found', `no action "${action}"; actions are ${ACTIONS.join(', ')}`);
    }
    const id = checkId(req.params.id);
    validate(noQuery, req.query, 'query');
    const body = hasBody(req) ? validate(action === 'abort' ? abortBody : emptyBody, req.body, 'body') : {};
    // Who is the token's name, never the client's word: a body's `by` is an unknown field (400).
    res.status(202).json(await service.act(action, id, { ...body, by: callerName(res) }));
  });

  return router;
}

/**
 * Express 5 answers a malformed `%` escape in a path parameter with a bare URIError (a 500 by
 * default); this names the parameter instead, before the router tries to decode it.
 */
function checkPathEscapes(names: readonly string[]): RequestHandler {
  return (req, _res, next) => {
    const issues = req.path
      .split('/')
      .slice(1)
      .flatMap((segment, i) => {
        if (decodes(segment)) return [];
        const name = names[i] ?? 'path';
        return [{ path: name, message: `${name} has a malformed percent-escape; "%" must be followed by two hex digits of UTF-8 (escape "%" itself as %25)` }];
      });
    next(issues.length > 0 ? invalidInput('invalid_request', 'invalid URL path', issues) : undefined);
  };
}

function decodes(segment: string): boolean {
  try {
    decodeURIComponent(segment);
    return true;
  } catch {
    return false;
  }
}

/** Express leaves `req.body` undefined when no JSON body was sent. */
function hasBody(req: Request): boolean {
  return req.body !== undefined;
}

function isAction(value: string): value is Action {
  return (ACTIONS as readonly string[]).includes(value);
}
