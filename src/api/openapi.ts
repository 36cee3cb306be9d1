/**
 * The REST API as an OpenAPI 3.1 document (served at GET /v1/openapi.json), generated from the
 * zod schemas with zod's own JSON Schema output (draft 2020-12, OpenAPI 3.1's dialect):
 *
 * - requests from the schemas the routes validate with: the rollout request (the spec as a
 *   client sends it: `io: 'input'`, durations as strings), the query and body schemas of
 *   rollouts.ts;
 * - responses from schemas.ts (RolloutStatus, RolloutSummary, the error envelope...), which the
 *   compiler keeps identical to the TS interfaces; `RolloutStatus.spec` is the spec schema's
 *   *output* (defaults filled in, durations in milliseconds).
 *
 * JSON Schema cannot say what a transform does. Each transform of the spec is therefore declared
 * below with its representation on both sides (TRANSFORMS); one that is not makes the document
 * fail to build, naming where, instead of being described as "anything". The same goes for every
 * other construct zod reports as unrepresentable. Refinements (zod's custom checks) are not
 * visible to JSON Schema either: the API checks more than the document says (cross-field rules,
 * URL rules, duration bounds), and answers 400 naming the field; a few are spelled out here
 * (REFINEMENTS), from the same constants the checks use.
 */
import { z } from 'zod';
import { analysisSchema, formatDuration, rolloutRequestSchema, rolloutSpecSchema, stepSchema } from '../spec';
import { IDEMPOTENCY_KEY_PATTERN, RESERVED_TARGETS, TARGET_PATTERN, TARGET_RULE } from '../spec/patterns';
import { rolloutWorkflowId } from '../workflows/messages';
import { MAX_ISSUES } from './errors';
import { ACTIONS, PHASES, type Action } from './rollout-service';
import { abortBody, emptyBody, getQuery, listQuery, noQuery } from './rollouts';
import * as schemas from './schemas';

export type JsonSchema = { [key: string]: unknown };
export type OpenApiDocument = JsonSchema & {
  openapi: '3.1.0';
  paths: Record<string, Record<string, JsonSchema>>;
  components: { schemas: Record<string, JsonSchema> } & JsonSchema;
};

/** What parseDuration (src/spec/duration.ts) reads: a number and a unit, repeated; spaces around are trimmed. */
export const DURATION_PATTERN = '^\\s*(?:\\d+(?:\\.\\d+)?(?:ms|s|m|h|d))+\\s*$';

// ---- transforms: declared, never guessed ----

interface Representation {
  /** What the wire carries into the API (the schema before the transform, enriched). */
  input(json: JsonSchema): void;
  /** What comes out (in RolloutStatus.spec): a schema, or `'input'` when the value keeps its input's type. */
  output: JsonSchema | 'input';
  /** A default as a client would write it (zod only knows the parsed value). */
  inputDefault?: (parsed: unknown) => unknown;
}

const DURATION: Representation = {
  input: (json) => {
    json.pattern = DURATION_PATTERN;
    json.description = 'a duration: numbers with a unit (ms, s, m, h, d), such as "30s", "5m" or "1h30m"; its bounds are in the README';
  },
  output: { type: 'integer', minimum: 0, description: 'milliseconds' },
  inputDefault: (ms) => formatDuration(ms as number),
};

/** The weight is rounded to its resolution: a number in, the same number out. */
const ROUNDED: Representation = { input: () => undefined, output: 'input' };

type Pipe = z.ZodPipe<z.ZodType, z.ZodType>;

/**
 * Every transform in the spec, by the pipe that holds it: one not listed here fails the build
 * (the spec's output, in RolloutStatus, cannot be described without it). The query schemas'
 * transforms (`limit`, `decisions`, `before`: digits → a number) need no entry: they are only
 * ever input, and their input, a string of digits, is what a query carries.
 */
const TRANSFORMS = new Map<z.core.$ZodType, Representation>([
  [stepSchema.shape.bake.unwrap(), DURATION],
  [analysisSchema.shape.interval.unwrap(), DURATION],
  [analysisSchema.shape.maxMetricsOutage.unwrap(), DURATION],
  [stepSchema.shape.weight.unwrap(), ROUNDED],
  [stepSchema.shape.shadow.unwrap(), ROUNDED],
  // Lower-cased: a string in, a string out.
  [stepSchema.shape.match.unwrap().shape.header, ROUNDED],
]);

/** Checks zod runs as custom code, spelled out for the document from the constants they use. */
const REFINEMENTS = new Map<z.core.$ZodType, (json: JsonSchema) => void>([
  ...[rolloutRequestSchema.shape.target, rolloutSpecSchema.shape.target].map(
    (schema) =>
      [
        schema,
        (json: JsonSchema) => {
          json.pattern = TARGET_PATTERN.source;
          json.not = { enum: [...RESERVED_TARGETS] };
          json.description = `the name the gateway routes: ${TARGET_RULE}; not ${[...RESERVED_TARGETS].join(', ')}`;
        },
      ] as const,
  ),
  [listQuery.shape.phase.unwrap(), (json) => void (json.enum = [...PHASES])],
]);

const transformOf = new Map<unknown, Pipe>([...TRANSFORMS.keys()].map((pipe) => [(pipe as Pipe).def.out, pipe as Pipe]));

/** zod → JSON Schema, with every unrepresentable construct either declared above or an error. */
function jsonSchemaParams(io: 'input' | 'output'): Parameters<typeof z.toJSONSchema>[1] & object {
  return {
    target: 'draft-2020-12',
    io,
    unrepresentable: ({ zodSchema, path, message }) => {
      const pipe = transformOf.get(zodSchema);
      const representation = pipe && TRANSFORMS.get(pipe);
      if (!pipe || !representation) {
        const where = `at ${path.join('/') || 'the root'}`;
        const fix = zodSchema._zod.def.type === 'transform' ? 'declare its JSON representation in src/api/openapi.ts (TRANSFORMS)' : 'the API can only send and read JSON values';
        throw new Error(`OpenAPI: ${message} (${where}); ${fix}`);
      }
      return representation.output === 'input' ? withoutDialect(z.toJSONSchema(pipe.def.in, { target: 'draft-2020-12', io: 'output' })) : representation.output;
    },
    override: ({ zodSchema, jsonSchema }) => {
      REFINEMENTS.get(zodSchema)?.(jsonSchema);
      // z.iso.datetime() adds a 400-character pattern that says what `format` says.
      if (jsonSchema.format === 'date-time') delete jsonSchema.pattern;
      if (io !== 'input') return;
      TRANSFORMS.get(zodSchema)?.input(jsonSchema);
      // zod drops the default of a transformed field from the input side (it knows only the
      // parsed value, 30000); the client writes it as "30s".
      const def = zodSchema._zod.def;
      if (def.type === 'default') {
        const inner = TRANSFORMS.get(def.innerType);
        if (inner?.inputDefault) jsonSchema.default = inner.inputDefault(def.defaultValue);
      }
    },
  };
}

/** One schema as the document describes it (no `$schema`: the document's dialect applies). */
export function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  return withoutDialect(z.toJSONSchema(schema, jsonSchemaParams(io)));
}

function withoutDialect(json: JsonSchema): JsonSchema {
  const { $schema: _dialect, ...rest } = json;
  return rest;
}

const REF = (id: string) => `#/components/schemas/${id}`;
const ref = (id: string) => ({ $ref: REF(id) });

/** The schemas of one registry, as components; references between them point into components. */
function components(io: 'input' | 'output', entries: Array<[z.ZodType, string]>): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  for (const [schema, id] of entries) registry.add(schema, { id });
  const { schemas: converted } = z.toJSONSchema(registry, { ...jsonSchemaParams(io), uri: REF }) as { schemas: Record<string, JsonSchema> };
  if ('__shared' in converted) throw new Error('OpenAPI: zod extracted shared definitions; give each reused schema an id in src/api/openapi.ts');
  // zod names each schema by its `$id` (its reference); in a document it is named by its place.
  return Object.fromEntries(Object.entries(converted).map(([id, { $id: _id, ...json }]) => [id, withoutDialect(json)]));
}

/** A route's query schema as OpenAPI parameters, one per property. */
function queryParameters(schema: z.ZodObject, descriptions: Record<string, string>): JsonSchema[] {
  const json = jsonSchemaOf(schema, 'input');
  const required = new Set((json.required as string[] | undefined) ?? []);
  return Object.entries((json.properties ?? {}) as Record<string, JsonSchema>).map(([name, property]) => ({
    name,
    in: 'query',
    required: required.has(name),
    ...(descriptions[name] ? { description: descriptions[name] } : {}),
    schema: property,
  }));
}

// ---- responses ----

const JSON_TYPE = 'application/json';
const content = (schema: JsonSchema) => ({ [JSON_TYPE]: { schema } });
const error = (description: string) => ({ description, content: content(ref('Error')) });

const ERRORS = {
  400: error('invalid query (unknown, repeated or bracketed keys included), body or JSON; `issues` name the fields'),
  401: {
    ...error('`unauthorized`: no bearer token, or one the API does not know (only when the API runs with tokens: API_TOKENS_FILE, API_TOKENS or API_TOKEN)'),
    headers: { 'WWW-Authenticate': { schema: { type: 'string' }, description: 'Bearer realm="model-canary"' } },
  },
  403: error("`forbidden`: the token's role may not do this (a `viewer` token on a route that needs `operator`); the message names the role needed"),
  404: error('no rollout with this id'),
  413: error('request body over 1 MiB'),
  415: error('a content type, charset or content encoding the API does not read; send JSON'),
  500: error('a bug of ours; see the API log'),
  503: error('Temporal is unavailable'),
  504: error('Temporal or the rollout did not answer in time (is a worker polling the task queue?)'),
} as const;

/** The errors every /v1 operation can answer: bad input, auth, body limits, Temporal, bugs. */
const v1Errors = (overrides: Partial<Record<keyof typeof ERRORS | 409 | 422, JsonSchema>> = {}) => ({ ...ERRORS, ...overrides });

const ID_PARAMETER = {
  name: 'id',
  in: 'path',
  required: true,
  description: `the rollout id: "${rolloutWorkflowId('')}" followed by the target`,
  schema: { type: 'string', pattern: `^${rolloutWorkflowId('')}${TARGET_PATTERN.source.replace(/^\^/, '')}` },
};

const ACTION_DOCS: Record<Action, { summary: string; description?: string; body: 'AbortRequest' | 'ActionRequest' }> = {
  pause: { summary: 'Pause: hold the current weights (the bake clock stops) until resumed', body: 'ActionRequest' },
  resume: { summary: 'Resume a paused rollout', body: 'ActionRequest' },
  abort: {
    summary: 'Abort: roll back to 100% baseline',
    description: '`reason` is recorded in the outcome and the events.',
    body: 'AbortRequest',
  },
  promote: { summary: 'Promote: skip the remaining steps, the candidate takes 100% now', body: 'ActionRequest' },
  approve: { summary: 'Approve: let a manual gate pass', body: 'ActionRequest' },
};

function actionOperation(action: Action): JsonSchema {
  const docs = ACTION_DOCS[action];
  return {
    operationId: `${action}Rollout`,
    tags: ['rollouts'],
    summary: docs.summary,
    description: [
      docs.description,
      'Needs a token with role `operator` (when the API has tokens); the rollout records the token\'s name as `by` in its events.',
      'The same action is a Temporal signal of the same name (for the temporal CLI and UI). Answers with the status after the action.',
    ]
      .filter(Boolean)
      .join(' '),
    parameters: [{ $ref: '#/components/parameters/RolloutId' }],
    requestBody: { required: false, description: 'optional: no body is the same as `{}`', content: content(ref(docs.body)) },
    responses: {
      202: { description: 'the action was applied; the status after it', content: content(ref('RolloutStatus')) },
      ...v1Errors({
        404: error('no rollout with this id'),
        409: error('the action does not apply in this phase (`not_applicable`), or the rollout has ended'),
        503: error("Temporal is unavailable, or the rollout's workflow task keeps failing (`workflow_task_failing`: a broken worker deploy; the message says what to do)"),
      }),
    },
  };
}

/** The document. Pure; built on first use (openApiDocument) and the same for every request. */
export function buildOpenApiDocument(): OpenApiDocument {
  const requestSchemas = components('input', [
    [rolloutRequestSchema, 'RolloutRequest'],
    [abortBody, 'AbortRequest'],
    [emptyBody, 'ActionRequest'],
  ]);
  const responseSchemas = components('output', [
    [schemas.rolloutStatusSchema, 'RolloutStatus'],
    [rolloutSpecSchema, 'RolloutSpec'],
    [schemas.decisionSchema, 'Decision'],
    [schemas.versionSummarySchema, 'VersionSummary'],
    [schemas.waitingSchema, 'Waiting'],
    [schemas.decisionPageSchema, 'DecisionPage'],
    [schemas.operatorEventSchema, 'OperatorEvent'],
    [schemas.metricsOutageSchema, 'MetricsOutage'],
    [schemas.outcomeSchema, 'Outcome'],
    [schemas.phaseSchema, 'Phase'],
    [schemas.rolloutSummarySchema, 'RolloutSummary'],
    [schemas.rolloutListSchema, 'RolloutList'],
    [schemas.errorBodySchema, 'Error'],
    [schemas.issueSchema, 'Issue'],
    [schemas.healthSchema, 'Health'],
    [schemas.healthUnavailableSchema, 'HealthUnavailable'],
  ]);
  const clash = Object.keys(requestSchemas).find((id) => id in responseSchemas);
  if (clash) throw new Error(`OpenAPI: schema id ${clash} is both a request and a response schema`);
  requestSchemas.RolloutRequest!.description =
    'A rollout spec as a client sends it: durations as strings, defaults optional. ' +
    '`baseline` may be left out: it is then taken from what the target serves now. ' +
    'The API checks more than this schema says (weights increase and end at 100, bakes of at least analysis.interval, ' +
    'duration bounds, URLs, fields the chosen judge does not read) and answers 400 naming each field.';
  const noQueryParameters = queryParameters(noQuery, {});

  const paths: OpenApiDocument['paths'] = {
    '/healthz': {
      get: {
        operationId: 'getHealth',
        tags: ['health'],
        summary: 'Health: the API and its Temporal connection',
        security: [],
        parameters: noQueryParameters,
        responses: {
          200: { description: 'Temporal is reachable', content: content(ref('Health')) },
          400: ERRORS[400],
          500: ERRORS[500],
          503: { description: 'Temporal is not reachable', content: content(ref('HealthUnavailable')) },
        },
      },
    },
    '/v1/openapi.json': {
      get: {
        operationId: 'getOpenApi',
        tags: ['meta'],
        summary: 'This document',
        security: [],
        parameters: noQueryParameters,
        responses: {
          200: { description: 'the OpenAPI 3.1 document of this API', content: content({ type: 'object', properties: { openapi: { const: '3.1.0' }, paths: { type: 'object' } }, required: ['openapi', 'paths'] }) },
          400: ERRORS[400],
          500: ERRORS[500],
        },
      },
    },
    '/v1/rollouts': {
      post: {
        operationId: 'startRollout',
        tags: ['rollouts'],
        summary: 'Start a rollout (one per target)',
        description: 'Needs a token with role `operator` (when the API has tokens); the token\'s name is recorded as `startedBy`.',
        parameters: [
          ...noQueryParameters,
          {
            name: 'Idempotency-Key',
            in: 'header',
            required: false,
            description:
              'makes a retried start safe: a start whose answer was lost, sent again with the same key and body, answers 200 with the rollout the first one started (`Idempotent-Replayed: true`), never a second rollout',
            schema: { type: 'string', pattern: IDEMPOTENCY_KEY_PATTERN.source },
          },
        ],
        requestBody: { required: true, description: "the rollout spec, as JSON (also read when sent with curl -d's default content type)", content: content(ref('RolloutRequest')) },
        responses: {
          201: { description: 'started; the initial status', content: content(ref('RolloutStatus')) },
          200: { description: 'the Idempotency-Key had started this rollout already (a retry): its current status; nothing new was started', content: content(ref('RolloutStatus')) },
          ...v1Errors({
            422: error('the Idempotency-Key was sent before with a different spec (`idempotency_key_reused`); nothing was started'),
            400: error('invalid spec (`invalid_spec`, `issues` name every field; also a baseline left out that the live route cannot give), invalid JSON or query'),
            409: error('the target already has a rollout in progress (`conflict`), or serves something else than the baseline the spec names (`baseline_mismatch`, with `live`: what it serves)'),
            503: error('Temporal is unavailable (`temporal_unavailable`), or the traffic router cannot say what the target serves now (`router_unavailable`); nothing was started'),
          }),
        },
      },
      get: {
        operationId: 'listRollouts',
        tags: ['rollouts'],
        summary: 'List rollouts, running and closed, newest first',
        description: 'Needs a token with role `viewer` or `operator` (when the API has tokens).',
        parameters: queryParameters(listQuery, {
          target: 'only this target',
          phase: 'only rollouts in this phase (as last recorded)',
          limit: 'at most this many, a whole number from 1 to 1000 (default 100)',
        }),
        responses: { 200: { description: 'the rollouts', content: content(ref('RolloutList')) }, ...v1Errors() },
      },
    },
    '/v1/rollouts/{id}': {
      get: {
        operationId: 'getRollout',
        tags: ['rollouts'],
        summary: "A rollout's status",
        description:
          'Needs a token with role `viewer` or `operator` (when the API has tokens). ' +
          '`decisions=N&before=SEQ` pages the decisions: the N newest with `seq` below SEQ, oldest first; ' +
          '`decisionPage.nextBefore` is the cursor for the next older page. ' +
          'A status rebuilt without the worker (no worker answered, or its workflow task keeps failing) says why in `stale`.',
        parameters: [
          { $ref: '#/components/parameters/RolloutId' },
          ...queryParameters(getQuery, {
            runId: 'a Temporal run of the rollout (a UUID); default: the latest',
            decisions: 'return only this many decisions, the newest (1 to 1000)',
            before: 'only decisions with `seq` below this (a decision\'s seq, or decisionPage.nextBefore)',
          }),
        ],
        responses: { 200: { description: 'the status', content: content(ref('RolloutStatus')) }, ...v1Errors({ 404: error('no rollout with this id') }) },
      },
    },
  };
  for (const action of ACTIONS) paths[`/v1/rollouts/{id}/${action}`] = { post: actionOperation(action) };

  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'model-canary',
      version: '1',
      summary: 'Progressive delivery (canary rollouts) for AI model endpoints',
      description:
        'The REST API of the control plane. Every error, 4xx or 5xx, is `{"error": {"code", "message", "issues"?}}`; ' +
        `\`issues\` (at most ${MAX_ISSUES}) name the fields to fix.`,
    },
    tags: [
      { name: 'rollouts', description: 'start, read and steer rollouts' },
      { name: 'health', description: 'liveness and Temporal reachability' },
      { name: 'meta', description: 'this document' },
    ],
    security: [{ bearerAuth: [] }],
    paths,
    components: {
      schemas: { ...requestSchemas, ...responseSchemas },
      parameters: { RolloutId: ID_PARAMETER },
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          description:
            'Authorization: Bearer <token>, on the /v1 routes (not /v1/openapi.json), when the API runs with tokens (API_TOKENS_FILE, API_TOKENS or API_TOKEN); without any, no auth. ' +
            'A `viewer` token may call the GET routes; an `operator` token every route (start and the actions). A token the API does not know is 401 `unauthorized`, a role that may not is 403 `forbidden`.',
        },
      },
    },
  };
}

let built: OpenApiDocument | undefined;

/** The document, built once. */
export function openApiDocument(): OpenApiDocument {
  return (built ??= buildOpenApiDocument());
}
