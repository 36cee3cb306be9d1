/** The /v1/rollouts routes: HTTP in, RolloutService calls, HTTP out. */
import { Router, type Request } from 'express';
import { z } from 'zod';
import { parseRolloutSpec } from '../spec';
import { TARGET_PATTERN } from '../spec/patterns';
import { ApiError } from './errors';
import { ACTIONS, PHASES, isPhase, type Action, type RolloutService } from './rollout-service';

const listQuery = z.strictObject({
  target: z.string().regex(TARGET_PATTERN, 'target must be a rollout target name').optional(),
  phase: z.string().refine(isPhase, `phase must be one of ${PHASES.join(', ')}`).optional(),
  limit: z.coerce
    .number({ error: 'limit must be a number' })
    .int('limit must be a whole number')
    .min(1, 'limit must be between 1 and 1000')
    .max(1000, 'limit must be between 1 and 1000')
    .optional(),
});

const getQuery = z.strictObject({
  runId: z.string().regex(/^[0-9a-f-]{1,64}$/i, 'runId must be a Temporal run id').optional(),
});

const abortBody = z.strictObject(
  { reason: z.string({ error: 'reason must be a string' }).max(1000, 'reason must be at most 1000 characters').optional() },
  { error: 'the body must be a JSON object such as {"reason": "..."}' },
);

/** Bodies read as JSON: JSON itself, and curl's default for `-d` (form type) holding JSON. */
export const JSON_TYPES = ['application/json', 'application/x-www-form-urlencoded'];

export function rolloutsRouter(service: RolloutService): Router {
  const router = Router();

  router.post('/', async (req, res) => {
    if (req.headers['content-type'] && !req.is(JSON_TYPES)) {
      throw new ApiError(415, 'unsupported_media_type', 'send the rollout spec as JSON, with Content-Type: application/json');
    }
    const parsed = parseRolloutSpec(req.body);
    if (!parsed.ok) {
      const summary = parsed.issues.map((i) => `${i.path}: ${i.message}`).join('; ');
      throw new ApiError(400, 'invalid_spec', `invalid rollout spec: ${summary}`, parsed.issues);
    }
    res.status(201).json(await service.start(parsed.spec));
  });

  router.get('/', async (req, res) => {
    const query = validate(listQuery, req.query, 'invalid query');
    const rollouts = await service.list({
      ...(query.target ? { target: query.target } : {}),
      ...(query.phase && isPhase(query.phase) ? { phase: query.phase } : {}),
      ...(query.limit ? { limit: query.limit } : {}),
    });
    res.json({ rollouts });
  });

  router.get('/:id', async (req, res) => {
    const { runId } = validate(getQuery, req.query, 'invalid query');
    res.json(await service.get(req.params.id, runId));
  });

  router.post('/:id/:action', async (req, res) => {
    const action = req.params.action;
    if (!isAction(action)) {
      throw new ApiError(404, 'not_found', `no action "${action}"; actions are ${ACTIONS.join(', ')}`);
    }
    const body = action === 'abort' && hasBody(req) ? validate(abortBody, req.body, 'invalid abort request') : {};
    res.status(202).json(await service.act(action, req.params.id, body));
  });

  return router;
}

function validate<T extends z.ZodType>(schema: T, input: unknown, what: string): z.output<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => ({
    path: issue.path.map(String).join('.') || '(root)',
    message: issue.code === 'unrecognized_keys' ? `unknown field(s): ${issue.keys.join(', ')}` : issue.message,
  }));
  throw new ApiError(400, 'invalid_request', `${what}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
}

/** Express leaves `req.body` undefined when no JSON body was sent. */
function hasBody(req: Request): boolean {
  return req.body !== undefined;
}

function isAction(value: string): value is Action {
  return (ACTIONS as readonly string[]).includes(value);
}
