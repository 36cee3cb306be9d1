/**
 * Routes: the validated shape of a target's traffic split, and their atomic persistence in
 * `$DATA_DIR/routes.json` (write a temp file, fsync it, rename it over, fsync the directory).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { callbackUrlSchema, targetProblem, upstreamUrlSchema, versionNameSchema, WEIGHT_RESOLUTION, isWeightMultiple } from '../spec/patterns';

export const MAX_VERSIONS = 4;
export { RESERVED_TARGETS, TARGET_PATTERN } from '../spec/patterns';

const MAX_NAMED_KEYS = 10;
const MAX_KEY_CHARS = 100;

/** `unknown field(s): "a", "b"` — quoted, since a key may hold any character; bounded in length. */
function unknownFields(keys: readonly string[]): string {
  const named = keys
    .slice(0, MAX_NAMED_KEYS)
    .map((key) => JSON.stringify(key.length > MAX_KEY_CHARS ? `${key.slice(0, MAX_KEY_CHARS)}…` : key))
    .join(', ');
  return `unknown field(s): ${named}${keys.length > MAX_NAMED_KEYS ? ` and ${keys.length - MAX_NAMED_KEYS} more` : ''}`;
}

/**
 * The error of a strict object: an unknown key is named (the issue's path is the object's), any
 * other problem with the object itself (not an object at all) gets `message`.
 */
const strictObjectError = (message: string) => (issue: z.core.$ZodRawIssue) =>
  issue.code === 'unrecognized_keys' ? unknownFields(issue.keys) : message;

export const routeVersionSchema = z.strictObject(
  {
    name: versionNameSchema('name'),
    url: upstreamUrlSchema('url'),
    weight: z
      .number({ error: 'weight must be a number' })
      .min(0, 'weight must be at least 0')
      .max(100, 'weight must be at most 100')
      // The rollout spec's resolution: one of the 10,000 buckets is 0.01%.
      .refine(isWeightMultiple, `weight must be a percentage in steps of ${WEIGHT_RESOLUTION}`),
  },
  { error: strictObjectError('each version must be an object with "name", "url" and "weight"') },
);

const MAX_MATCH_VALUES = 20;
const MAX_MATCH_VALUE_CHARS = 200;
/** An HTTP field name (RFC 9110 token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/;

/**
 * Only requests whose `header` has one of `values` are split by the weights; every other request
 * goes to the version `others`. The name is stored lower-cased (as the proxy compares it).
 */
export const routeMatchSchema = z.strictObject(
  {
    header: z
      .string({ error: 'match.header must be a string' })
      .regex(HEADER_NAME, 'match.header must be an HTTP header name (letters, digits and !#$%&\'*+-.^_`|~, at most 100)')
      .transform((name) => name.toLowerCase()),
    values: z
      .array(
        z.string({ error: 'match.values must be strings' }).min(1, 'match.values must not be empty strings').max(MAX_MATCH_VALUE_CHARS, `match.values must be at most ${MAX_MATCH_VALUE_CHARS} characters each`),
        { error: 'match.values must be an array of strings' },
      )
      .min(1, 'match.values must list at least one value')
      .max(MAX_MATCH_VALUES, `match.values may list at most ${MAX_MATCH_VALUES} values`),
    others: versionNameSchema('match.others'),
  },
  { error: strictObjectError('match must be an object with "header", "values" and "others"') },
);

/**
 * A shadow: copies of `percent`% of the requests `from` serves go to `to` (whose answers nobody
 * sees); `evaluator` judges a `sample` fraction of the pairs.
 */
export const routeMirrorSchema = z.strictObject(
  {
    from: versionNameSchema('mirror.from'),
    to: versionNameSchema('mirror.to'),
    percent: z
      .number({ error: 'mirror.percent must be a number' })
      .gt(0, 'mirror.percent must be more than 0')
      .max(100, 'mirror.percent must be at most 100'),
    evaluator: z
      .strictObject(
        {
          url: callbackUrlSchema('mirror.evaluator.url'),
          sample: z.number({ error: 'mirror.evaluator.sample must be a number' }).min(0, 'mirror.evaluator.sample must be at least 0').max(1, 'mirror.evaluator.sample must be at most 1'),
        },
        { error: strictObjectError('mirror.evaluator must be an object with "url" and "sample"') },
      )
      .optional(),
  },
  { error: strictObjectError('mirror must be an object with "from", "to" and "percent"') },
);

export type RouteMatch = z.infer<typeof routeMatchSchema>;
export type RouteMirror = z.infer<typeof routeMirrorSchema>;

export const routeInputSchema = z
  .strictObject(
    {
      versions: z
        .array(routeVersionSchema, { error: 'versions must be an array' })
        .min(1, 'versions must list at least one version')
        .max(MAX_VERSIONS, `versions may list at most ${MAX_VERSIONS} versions`),
      salt: z.string({ error: 'salt must be a string' }).min(1, 'salt must not be empty').max(200, 'salt must be at most 200 characters').optional(),
      match: routeMatchSchema.optional(),
      mirror: routeMirrorSchema.optional(),
    },
    { error: strictObjectError('the body must be a JSON object with "versions"') },
  )
  .superRefine((route, ctx) => {
    const seen = new Map<string, number>();
    route.versions.forEach((version, i) => {
      const first = seen.get(version.name);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['versions', i, 'name'], message: `name "${version.name}" is already used by versions.${first}` });
      } else {
        seen.set(version.name, i);
      }
    });
    const sum = route.versions.reduce((total, version) => total + version.weight, 0);
    if (Math.abs(sum - 100) > 1e-6) {
      ctx.addIssue({ code: 'custom', path: ['versions'], message: `weights must sum to 100 (they sum to ${Number(sum.toFixed(6))})` });
    }
    const names = route.versions.map((v) => JSON.stringify(v.name)).join(', ');
    const mustName = (path: string[], field: string, name: string) => {
      if (!seen.has(name)) ctx.addIssue({ code: 'custom', path, message: `${field} "${name}" must name one of the route's versions (${names})` });
    };
    if (route.match) mustName(['match', 'others'], 'match.others', route.match.others);
    if (route.mirror) {
      mustName(['mirror', 'from'], 'mirror.from', route.mirror.from);
      mustName(['mirror', 'to'], 'mirror.to', route.mirror.to);
      if (route.mirror.from === route.mirror.to) ctx.addIssue({ code: 'custom', path: ['mirror', 'to'], message: 'mirror.to must be another version than mirror.from' });
    }
  });

export type RouteInput = z.infer<typeof routeInputSchema>;
export type RouteVersion = z.infer<typeof routeVersionSchema>;

/** A stored route: its versions in order [baseline, candidate, ...], its bucketing salt, and optionally a header match and a mirror. */
export interface Route {
  versions: RouteVersion[];
  salt: string;
  match?: RouteMatch;
  mirror?: RouteMirror;
}

export interface Issue {
  path: string;
  message: string;
}

export type Validation<T> = { ok: true; value: T } | { ok: false; issues: Issue[] };

export function validateTarget(target: string): Issue[] {
  const problem = targetProblem(target);
  return problem ? [{ path: 'target', message: problem }] : [];
}

/**
 * Validates a PUT body for `target`. The salt defaults to the existing route's salt (so a
 * weight change keeps every key where it was), or else to the target's name.
 */
export function parseRoute(target: string, body: unknown, existing?: Route): Validation<Route> {
  const targetIssues = validateTarget(target);
  const result = routeInputSchema.safeParse(body);
  const issues = [...targetIssues];
  if (!result.success) {
    for (const issue of result.error.issues) issues.push({ path: issue.path.map(String).join('.'), message: issue.message });
  }
  if (issues.length > 0 || !result.success) return { ok: false, issues };
  const { match, mirror } = result.data;
  const versions = result.data.versions.map((v) => ({ name: v.name, url: v.url, weight: v.weight }));
  const route: Route = { versions, salt: result.data.salt ?? existing?.salt ?? target };
  if (match) route.match = match;
  if (mirror) route.mirror = mirror;
  return { ok: true, value: route };
}

const fileSchema = z.object({
  routes: z.record(
    z.string(),
    z.object({ versions: z.array(routeVersionSchema).min(1), salt: z.string().min(1), match: routeMatchSchema.optional(), mirror: routeMirrorSchema.optional() }),
  ),
});

/**
 * The route table with its file. Writes are serialized; the in-memory table changes only once
 * the new file is durably in place, so what callers see is always what a restart would load.
 */
export class RouteStore {
  private routes = new Map<string, Route>();
  private queue: Promise<unknown> = Promise.resolve();
  private tempCounter = 0;
  readonly file: string;

  constructor(readonly dataDir: string) {
    this.file = path.join(dataDir, 'routes.json');
  }

  /** Loads routes.json if present (a missing file is an empty table; a corrupt one is an error). */
  async load(): Promise<void> {
    await fs.mkdir(this.dataDir, { recursive: true });
    let text: string;
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const parsed = fileSchema.safeParse(JSON.parse(text));
    if (!parsed.success) throw new Error(`${this.file} is not a valid routes file: ${parsed.error.message}`);
    this.routes = new Map(Object.entries(parsed.data.routes));
  }

  get(target: string): Route | undefined {
    return this.routes.get(target);
  }

  entries(): IterableIterator<[string, Route]> {
    return this.routes.entries();
  }

  toJSON(): { routes: Record<string, Route> } {
    return { routes: Object.fromEntries(this.routes) };
  }

  set(target: string, route: Route): Promise<void> {
    return this.mutate((next) => next.set(target, route));
  }

  /** Resolves true if the target existed. */
  delete(target: string): Promise<boolean> {
    let existed = false;
    return this.mutate((next) => {
      existed = next.delete(target);
      return existed;
    }).then(() => existed);
  }

  private mutate(change: (next: Map<string, Route>) => unknown): Promise<void> {
    const run = async () => {
      const next = new Map(this.routes);
      change(next);
      await this.writeAtomically(JSON.stringify({ routes: Object.fromEntries(next) }, null, 2) + '\n');
      this.routes = next;
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async writeAtomically(text: string): Promise<void> {
    const temp = `${this.file}.tmp-${process.pid}-${++this.tempCounter}`;
    const handle = await fs.open(temp, 'w', 0o644);
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await fs.rename(temp, this.file);
    } catch (err) {
      await fs.rm(temp, { force: true });
      throw err;
    }
    await fsyncDir(this.dataDir);
  }
}

async function fsyncDir(dir: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch (err) {
    // Some platforms cannot fsync a directory; the rename is still atomic there.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EBADF') throw err;
  } finally {
    await handle?.close();
  }
}
