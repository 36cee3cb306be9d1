/**
 * NGINX as a TrafficRouter: each target's split is rendered into config files in `configDir`,
 * checked with `nginx -t` and applied with `nginx -s reload` (graceful: requests in flight finish
 * on the old workers).
 *
 * `routing: { kind: "nginx", configDir, listen, nginx?, nginxConfig?, prefix? }`. The user's
 * nginx.conf includes ONE glob inside its `http {}` block:
 *
 *     http {
 *         include /etc/nginx/model-canary/*.conf;     # routing.configDir
 *     }
 *
 * and the router writes, in configDir:
 *
 * - `_server.conf` — a `server { listen <routing.listen>; ... }` that serves every target like
 *   the embedded gateway (design.md, "Gateway (contract)"): any method on `/{target}/{rest}`
 *   goes to the chosen version's `url` + `/{rest}` (the raw path and query as the client sent
 *   them; `/{target}` alone is `/`), bodies streamed both ways (SSE included: no buffering), and
 *   the response carries `x-canary-version: <version>`. Other paths: 404. It includes the
 *   targets' `*.locations` files. (`_` cannot start a target name, so no target collides.)
 * - `<target>.conf` (http level) — a JSON header comment with the route (what readRoute
 *   reads back), one `upstream` per version (from the version's url), the `split_clients` that
 *   pick the version, and `map`s from the version to its upstream, Host and SNI.
 * - `<target>.locations` (inside `_server.conf`'s server) — `location ~ ^/<target>(/|$)` that
 *   proxies, and `location = /_model_canary/<target>`: the rendered route and its `generation`
 *   as JSON, which setWeights polls after a reload until the new generation answers.
 *
 * Assignment. With an `x-canary-key` header: `split_clients "<salt>:$http_x_canary_key"`, so a
 * key always gets the same version at a given split (sticky); without it, `split_clients
 * "$request_id"`, a fresh random draw per request. `split_clients` hashes its string with
 * MurmurHash2 into 0..2^32-1 and hands out that range to its entries in the order they are listed:
 * entry k owns [sum of the sizes before it, + its own size), sizes in steps of 0.01% (nginx reads
 * two decimals; `0%` is refused, so versions at 0 are left out), the last entry `*` owns the rest.
 * The versions are listed LAST FIRST and the first version (the baseline) is the `*`: with
 * [baseline, candidate] the candidate owns [0, w) and the baseline [w, 100%). Raising w only
 * extends the candidate's range over hashes the baseline had, so a key only ever moves baseline →
 * candidate, never back (and lowering w, e.g. a rollback, only moves keys back to the baseline),
 * exactly like src/gateway/bucketing.ts (whose hash differs: a key's version under NGINX is not
 * the one it would get from the embedded gateway). The salt, `route.routerState.salt ??
 * change.rolloutId` as with the gateway router, fixes which keys hash low: one set per rollout,
 * and a restored route keeps its own. It goes into the config as a SHA-256 prefix (any rollout id
 * is then safe in a config string); the header comment keeps the salt itself.
 *
 * A header match (TrafficRoute.match: `{ header, values, others }`): the split above becomes
 * `$…_split`, and `map $http_<header, '-' as '_'> $…_version` picks it for a request whose header
 * is one of the values — one anchored, case-sensitive regex per value (`"~^internal$"`; a map's
 * plain strings would match case-insensitively), its metacharacters escaped — and `others` for
 * every other request. Values with `"` or `\`, control characters or outer spaces are refused, as
 * are headers NGINX cannot name as a variable (anything but lower-case letters, digits and '-').
 * The header comment and the status location carry the match; readRoute gives it back.
 *
 * setWeights: under a lock per configDir (one worker process; routes of different targets are
 * then tested one at a time), renders the files, writes them atomically (temp file + rename), runs
 * `nginx -t`; when it fails, the previous files are put back (so a broken config is never what a
 * reload or restart picks up) and the activity fails for good (ApplicationFailure, non-retryable)
 * with nginx's own error text. Else `nginx -s reload`, then polls the status location until it
 * answers the new generation (a retryable error if it does not within VERIFY_TIMEOUT_MS: e.g.
 * nginx is not running, or its master refused the reload, say a port it could not bind).
 *
 * `nginx` (default `nginx`, from PATH), `nginxConfig` (`-c`; default: nginx's compiled-in
 * nginx.conf) and `prefix` (`-p`) name the instance: the same flags as the running nginx, whose
 * `pid` directive tells `-s reload` whom to signal. The worker needs to write configDir and to
 * signal nginx's master (usually: run as the same user, or root).
 *
 * Each version's url becomes an `upstream` (keep-alive to it; https with SNI): nginx resolves its
 * host when it loads the config (`-t` refuses a name that does not resolve), so a DNS change
 * takes a reload. The location sets its own proxy headers (Host, Connection), so `proxy_set_header` lines of
 * the user's http block do not apply to it. One configDir belongs to one nginx server: every
 * routing spec that names it gives the same `listen`.
 */
import { ApplicationFailure } from '@temporalio/common';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { defineAdapter, refuseUnsupported } from '../registry';
import type { RouteChange, RouteMatch, TrafficRoute, TrafficRouter } from '../types';

/** How long setWeights waits for nginx to answer the new generation after a reload. */
export const VERIFY_TIMEOUT_MS = 10_000;
/** Longest `nginx -t` or `nginx -s reload` (a config with upstream names resolves them). */
const COMMAND_TIMEOUT_MS = 30_000;

export const STATUS_PATH = '/_model_canary';
export const SERVER_FILE = '_server.conf';
const HEADER = '# model-canary route: ';

const TARGET_PATTERN = /^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;
const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** `[host:]port`, host an IPv4 address, `*`, a name, or `[IPv6]`: nginx's `listen` address forms. */
const LISTEN_PATTERN = /^(?:(\*|[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):)?(\d{1,5})$/;
/** What a URL path may hold in the config (a quoted map value): no `$` (a variable), quotes, `\`, braces or spaces. */
const SAFE_PATH = /^[A-Za-z0-9._~!&'()*+,;=:@%/-]*$/;
/** A match header NGINX can read as `$http_<name>`: lower case, digits and '-' ('_' headers nginx drops by default). */
const MATCH_HEADER = /^[a-z0-9]+(-[a-z0-9]+)*$/;
/**
 * A match value NGINX config carries safely: visible ASCII and inner spaces, without `"` or `\`
 * (it goes into a quoted, case-sensitive map regex, its metacharacters `$` included escaped: a map
 * key is no variable). HTTP trims a header's outer spaces, so a value with them could never match.
 */
const MATCH_VALUE = /^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/;
const MATCH_VALUE_REFUSED = /["\\]/;
const MAX_MATCH_VALUE = 4096;

const absolutePath = (what: string) =>
  z.string({ error: `${what} must be a string` }).refine((p) => isAbsolute(p), { message: `${what} must be an absolute path` });

const listenProblem = (listen: string): string | undefined => {
  const match = LISTEN_PATTERN.exec(listen);
  const port = match ? Number(match[2]) : NaN;
  if (!match || !(port >= 1 && port <= 65535)) return 'routing.listen must be a port ("8081") or address:port ("127.0.0.1:8081", "[::1]:8081", "*:8081"): where NGINX serves the targets';
  return undefined;
};

export const nginxOptions = z.strictObject(
  {
    kind: z.literal('nginx'),
    /** Where the router writes its files; the user's nginx.conf has `include <configDir>/*.conf;` in `http {}`. */
    configDir: absolutePath('routing.configDir'),
    /** nginx's `listen` for the server that serves the targets, e.g. "8081" or "127.0.0.1:8081". */
    listen: z
      .string({ error: 'routing.listen must be a string: a port ("8081") or address:port ("127.0.0.1:8081")' })
      .superRefine((listen, ctx) => {
        const problem = listenProblem(listen);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      }),
    /** The nginx binary (a path, or a name on the worker's PATH). */
    nginx: z.string({ error: 'routing.nginx must be a string' }).min(1, 'routing.nginx must name the nginx binary').default('nginx'),
    /** The main config file, given as `-c` to `nginx -t` and `nginx -s reload` (default: nginx's own). */
    nginxConfig: absolutePath('routing.nginxConfig').optional(),
    /** nginx's prefix (`-p`), when the running nginx was started with one. */
    prefix: absolutePath('routing.prefix').optional(),
  },
  { error: 'routing must be an object: { "kind": "nginx", "configDir": "<absolute path>", "listen": "<port or address:port>" }' },
);

export type NginxOptions = z.output<typeof nginxOptions>;

/** `routing: { kind: "nginx", ... }`: the rollout's weights rendered into the user's NGINX config. */
export const nginxRouter = defineAdapter({
  kind: 'nginx',
  options: nginxOptions,
  versionUrls: 'required',
  supports: ['match'],
  create: (options): TrafficRouter => nginxTrafficRouter(options),
});

/** The route as the header comment of `<target>.conf` holds it. */
const storedRoute = z.object({
  target: z.string(),
  versions: z.array(z.object({ version: z.string(), weight: z.number(), url: z.string() })).min(1),
  salt: z.string(),
  generation: z.number().int(),
  /** TrafficRoute.match, as applied. */
  match: z.object({ header: z.string(), values: z.array(z.string()).min(1), others: z.string() }).optional(),
});
type StoredRoute = z.output<typeof storedRoute>;

interface Upstream {
  version: string;
  weight: number;
  url: string;
  scheme: 'http' | 'https';
  /** `host:port` for the upstream's `server` line. */
  hostPort: string;
  /** The Host header: the URL's host (its port only when not the scheme's default). */
  host: string;
  /** The hostname alone (TLS SNI). */
  hostname: string;
  /** The URL's path without a trailing '/' ('' for the root). */
  basePath: string;
}

/** One chain per configDir: in this process, one change at a time is written, tested and reloaded. */
const locks = new Map<string, Promise<unknown>>();

function withLock<T>(key: string, work: () => Promise<T>): Promise<T> {
  const previous = locks.get(key) ?? Promise.resolve();
  const next = previous.then(work, work);
  const settled = next.then(
    () => undefined,
    () => undefined,
  );
  locks.set(key, settled);
  void settled.then(() => {
    if (locks.get(key) === settled) locks.delete(key);
  });
  return next;
}

export function nginxTrafficRouter(options: NginxOptions): TrafficRouter {
  const configDir = resolve(options.configDir);
  const listen = options.listen;
  const statusBase = statusBaseUrl(listen);
  const baseArgs = [...(options.prefix ? ['-p', options.prefix] : []), ...(options.nginxConfig ? ['-c', options.nginxConfig] : [])];
  const files = (target: string) => ({ conf: join(configDir, `${target}.conf`), locations: join(configDir, `${target}.locations`) });

  async function readStored(target: string): Promise<StoredRoute | undefined> {
    const text = await readIfExists(files(target).conf);
    if (text === undefined) return undefined;
    const line = text.split('\n', 1)[0]!;
    let parsed: ReturnType<typeof storedRoute.safeParse> | undefined;
    if (line.startsWith(HEADER)) {
      try {
        parsed = storedRoute.safeParse(JSON.parse(line.slice(HEADER.length)));
      } catch {
        parsed = undefined;
      }
    }
    if (!parsed?.success) {
      throw ApplicationFailure.nonRetryable(
        `${files(target).conf} is not a route the NGINX router wrote (its first line must be "${HEADER}{...}"): remove it, or restore the router's file`,
        'InvalidRouterState',
      );
    }
    return parsed.data;
  }

  async function nginx(args: string[]): Promise<{ ok: boolean; output: string }> {
    return new Promise((done, fail) => {
      execFile(options.nginx, [...baseArgs, ...args], { timeout: COMMAND_TIMEOUT_MS, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
        const output = `${stderr}${stdout}`.trim();
        if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
          fail(ApplicationFailure.nonRetryable(`cannot run nginx "${options.nginx}" (routing.nginx): not found`, 'NginxMissing'));
          return;
        }
        if (err && err.killed) {
          fail(new Error(`nginx ${args.join(' ')} did not finish within ${COMMAND_TIMEOUT_MS} ms${output ? `: ${output}` : ''}`));
          return;
        }
        done({ ok: !err, output: output || (err ? err.message : '') });
      });
    });
  }

  async function verify(target: string, generation: number): Promise<void> {
    const url = `${statusBase}${STATUS_PATH}/${target}`;
    const deadline = Date.now() + VERIFY_TIMEOUT_MS;
    let last = 'no answer yet';
    // Old workers may still accept for a moment after the first new answer: a few in a row.
    let inARow = 0;
    for (;;) {
      try {
        const { status, body } = await getFresh(url, 2_000);
        const answered = status === 200 ? (JSON.parse(body) as { generation?: unknown }).generation : undefined;
        if (answered === generation) {
          if (++inARow >= 3) return;
          await new Promise((r) => setTimeout(r, 30));
          continue;
        }
        inARow = 0;
        last = status === 200 ? `it answers generation ${String(answered)}` : `HTTP ${status}`;
      } catch (err) {
        inARow = 0;
        last = (err as Error).message;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `nginx was reloaded but ${url} did not answer generation ${generation} within ${VERIFY_TIMEOUT_MS} ms (${last}): is nginx running with this config, and did its reload succeed (see its error log)?`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  return {
    async setWeights(route: TrafficRoute, change: RouteChange) {
      const target = route.target;
      if (!TARGET_PATTERN.test(target)) throw ApplicationFailure.nonRetryable(`target "${target}" cannot be an NGINX route: lower-case letters, digits and '-', starting with a letter`, 'InvalidRoute');
      refuseUnsupported('nginx', nginxRouter.supports, route);
      const upstreams = upstreamsOf(route);
      const match = matchOf(route);
      const salt = route.routerState?.salt ?? change.rolloutId;

      await withLock(configDir, async () => {
        await mkdir(configDir, { recursive: true });
        const previousRoute = await readStored(target);
        const generation = (previousRoute?.generation ?? 0) + 1;
        const stored: StoredRoute = {
          target,
          versions: upstreams.map(({ version, weight, url }) => ({ version, weight, url })),
          salt,
          generation,
          ...(match ? { match } : {}),
        };
        const wanted = new Map<string, string>([
          [join(configDir, SERVER_FILE), renderServer(configDir, listen)],
          [files(target).conf, renderHttpConf(stored, upstreams)],
          [files(target).locations, renderLocations(stored)],
        ]);
        const previous = new Map<string, string | undefined>();
        for (const path of wanted.keys()) previous.set(path, await readIfExists(path));

        const restore = async () => {
          for (const [path, text] of previous) {
            if (text === wanted.get(path)) continue;
            if (text === undefined) await unlink(path).catch(() => undefined);
            else await writeAtomically(path, text);
          }
        };
        let test: { ok: boolean; output: string };
        try {
          for (const [path, text] of wanted) if (previous.get(path) !== text) await writeAtomically(path, text);
          test = await nginx(['-t']);
        } catch (err) {
          await restore(); // never half a change on disk
          throw err;
        }
        if (!test.ok) {
          await restore();
          throw ApplicationFailure.nonRetryable(`nginx -t refused the route of ${target} (the previous config is back in place): ${test.output}`, 'NginxConfigRejected');
        }
        const reload = await nginx(['-s', 'reload']);
        if (!reload.ok) throw new Error(`nginx -s reload failed (the new config of ${target} is written and tested; retrying): ${reload.output}`);
        await verify(target, generation);
      });
    },

    async readRoute(target: string) {
      if (!TARGET_PATTERN.test(target)) return undefined;
      const stored = await readStored(target);
      if (!stored) return undefined;
      return {
        target,
        versions: stored.versions.map(({ version, weight, url }) => ({ version, weight, url })),
        routerState: { salt: stored.salt },
        ...(stored.match ? { match: { header: stored.match.header, values: [...stored.match.values], others: stored.match.others } } : {}),
      };
    },
  };
}

/** Where the router reaches the server it renders: the listen address, or loopback when it listens on all. */
export function statusBaseUrl(listen: string): string {
  const match = LISTEN_PATTERN.exec(listen);
  if (!match) throw new Error(`invalid listen "${listen}"`);
  const host = match[1];
  const port = match[2];
  if (host === undefined || host === '*' || host === '0.0.0.0') return `http://127.0.0.1:${port}`;
  if (host === '[::]') return `http://[::1]:${port}`;
  return `http://${host}:${port}`;
}

function upstreamsOf(route: TrafficRoute): Upstream[] {
  const invalid = (message: string) => ApplicationFailure.nonRetryable(`route of ${route.target}: ${message}`, 'InvalidRoute');
  if (route.versions.length === 0) throw invalid('it has no versions');
  const seen = new Set<string>();
  let total = 0;
  const upstreams = route.versions.map((v): Upstream => {
    if (!VERSION_PATTERN.test(v.version)) throw invalid(`version "${v.version}" must be 1-63 characters of letters, digits, '.', '_' or '-'`);
    if (seen.has(v.version)) throw invalid(`version ${v.version} appears twice`);
    seen.add(v.version);
    if (!Number.isFinite(v.weight) || v.weight < 0 || v.weight > 100) throw invalid(`the weight of ${v.version} must be 0-100 (percent), not ${v.weight}`);
    total += v.weight;
    if (!v.url) throw invalid(`version ${v.version} has no url: NGINX sends traffic to URLs`);
    let url: URL;
    try {
      url = new URL(v.url);
    } catch {
      throw invalid(`the url of ${v.version} must be an absolute http(s) URL, not ${JSON.stringify(v.url)}`);
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname) throw invalid(`the url of ${v.version} must be an absolute http(s) URL, not ${JSON.stringify(v.url)}`);
    if (url.username || url.password || url.search || url.hash || v.url.includes('?') || v.url.includes('#')) {
      throw invalid(`the url of ${v.version} must have no credentials, query or fragment`);
    }
    if (!SAFE_PATH.test(url.pathname)) throw invalid(`the url path of ${v.version} holds characters NGINX config cannot carry as they are ("$", quotes, "\\", braces, spaces): percent-encode them`);
    const scheme = url.protocol === 'https:' ? 'https' : 'http';
    const port = url.port || (scheme === 'https' ? '443' : '80');
    return { version: v.version, weight: v.weight, url: v.url, scheme, hostPort: `${url.hostname}:${port}`, host: url.host, hostname: url.hostname.replace(/^\[|\]$/g, ''), basePath: url.pathname.replace(/\/+$/, '') };
  });
  if (Math.abs(total - 100) > 0.001) throw invalid(`the weights must sum to 100, not ${total}`);
  return upstreams;
}

/** The route's match, checked for what NGINX config can express (undefined: every request is split). */
function matchOf(route: TrafficRoute): RouteMatch | undefined {
  const match = route.match;
  if (!match) return undefined;
  const invalid = (message: string) => ApplicationFailure.nonRetryable(`route of ${route.target}: ${message}`, 'InvalidRoute');
  if (typeof match.header !== 'string' || !MATCH_HEADER.test(match.header)) {
    throw invalid(`match.header ${JSON.stringify(match.header)} cannot be matched by NGINX: a header name of lower-case letters, digits and '-' (NGINX reads it as $http_<name with '_' for '-'>)`);
  }
  if (!Array.isArray(match.values) || match.values.length === 0) throw invalid('match.values must list at least one header value');
  const values: string[] = [];
  for (const value of match.values) {
    if (typeof value !== 'string' || value.length > MAX_MATCH_VALUE || !MATCH_VALUE.test(value) || MATCH_VALUE_REFUSED.test(value)) {
      throw invalid(
        `match.values: ${JSON.stringify(value)} cannot be carried by NGINX config: 1-${MAX_MATCH_VALUE} visible ASCII characters (inner spaces allowed), without '"' or '\\'`,
      );
    }
    if (!values.includes(value)) values.push(value);
  }
  if (!route.versions.some((v) => v.version === match.others)) {
    throw invalid(`match.others "${match.others}" must be a version of the route (${route.versions.map((v) => v.version).join(', ')}): requests without the header go to its url`);
  }
  return { header: match.header, values, others: match.others };
}

/** A header value as a case-sensitive, anchored map regex (plain map strings match case-insensitively). */
const exactRegex = (value: string) => `"~^${value.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&')}$"`;

/** The config's name for a target: nginx variable names take letters, digits and '_' (targets have no '_', so this is one-to-one). */
const ident = (target: string) => `model_canary_${target.replace(/-/g, '_')}`;

/**
 * The `split_clients` entries: versions last first, each with its share in 0.01% steps taken
 * from cumulative bounds (as bucketRanges does, so the shares always sum to at most 100%), and the
 * first version with a share above 0 closest to the front of the route (the baseline) as `*`.
 */
export function splitEntries(versions: readonly { version: string; weight: number }[]): string[] {
  const live = versions.map((v, index) => ({ ...v, index })).filter((v) => Math.round(v.weight * 100) > 0);
  if (live.length === 0) return [`* ${versions[0]!.version};`];
  const entries: string[] = [];
  let cumulative = 0;
  let bound = 0;
  for (let i = live.length - 1; i >= 1; i--) {
    cumulative += live[i]!.weight;
    const next = Math.min(10_000, Math.round(cumulative * 100));
    const steps = next - bound;
    if (steps > 0) entries.push(`${(steps / 100).toFixed(2)}% ${live[i]!.version};`);
    bound = next;
  }
  entries.push(`* ${live[0]!.version};`);
  return entries;
}

/** A string inside double quotes in the config (the values here never hold `$`). */
const quoted = (text: string) => `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

function renderHttpConf(stored: StoredRoute, upstreams: Upstream[]): string {
  const id = ident(stored.target);
  const saltToken = createHash('sha256').update(stored.salt).digest('hex').slice(0, 16);
  const split = splitEntries(upstreams).map((e) => `    ${e}`).join('\n');
  const lines = [
    `${HEADER}${JSON.stringify(stored)}`,
    `# Generated by model-canary's NGINX router for target "${stored.target}": do not edit (the next change overwrites it).`,
    '',
    ...upstreams.flatMap((u, i) => [`upstream ${id}_${i} {`, `    server ${u.hostPort};`, '    keepalive 16;', '}']),
    '',
    `# Sticky on x-canary-key (salted per rollout); listed last version first, the baseline "*" last:`,
    `# raising the candidate's share only moves keys from the baseline to it.`,
    `split_clients "${saltToken}:\${http_x_canary_key}" $${id}_keyed {`,
    split,
    '}',
    `# Without the header: a fresh draw per request.`,
    `split_clients "\${request_id}" $${id}_random {`,
    split,
    '}',
    ...(stored.match
      ? [
          `map $http_x_canary_key $${id}_split {`,
          `    "" $${id}_random;`,
          `    default $${id}_keyed;`,
          '}',
          `# Only requests whose ${stored.match.header} is one of the values (exactly, case-sensitive) are split; the rest go to ${stored.match.others}.`,
          `map $http_${stored.match.header.replace(/-/g, '_')} $${id}_version {`,
          ...stored.match.values.map((value) => `    ${exactRegex(value)} $${id}_split;`),
          `    default ${quoted(stored.match.others)};`,
          '}',
        ]
      : [`map $http_x_canary_key $${id}_version {`, `    "" $${id}_random;`, `    default $${id}_keyed;`, '}']),
    `map $${id}_version $${id}_pass {`,
    ...upstreams.map((u, i) => `    ${quoted(u.version)} ${quoted(`${u.scheme}://${id}_${i}${u.basePath}`)};`),
    '}',
    `map $${id}_version $${id}_host {`,
    ...upstreams.map((u) => `    ${quoted(u.version)} ${quoted(u.host)};`),
    '}',
    `map $${id}_version $${id}_sni {`,
    ...upstreams.map((u) => `    ${quoted(u.version)} ${quoted(u.hostname)};`),
    '}',
    `# The path after /${stored.target}, raw as the client sent it, with its query ("/" for /${stored.target} alone).`,
    `map $request_uri $${id}_rest {`,
    `    "~^/${stored.target}(/.*)$" $1;`,
    `    "~^/${stored.target}(\\?.*)?$" /$1;`,
    '    default "";',
    '}',
    '',
  ];
  return lines.join('\n');
}

/** JSON inside a single-quoted config string: `$` as a JSON escape (no variable), `\` and `'` escaped for nginx. */
const jsonForConfig = (value: unknown) => `'${JSON.stringify(value).replace(/\$/g, '\\u0024').replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

function renderLocations(stored: StoredRoute): string {
  const id = ident(stored.target);
  const t = stored.target;
  const status = {
    target: t,
    generation: stored.generation,
    versions: stored.versions.map(({ version, weight }) => ({ version, weight })),
    ...(stored.match ? { match: stored.match } : {}),
  };
  const badPath = { error: { code: 'bad_path', message: `the path must start with /${t}/ as sent (no encoded or doubled characters before the rest)` } };
  return [
    `# Generated by model-canary's NGINX router for target "${t}" (generation ${stored.generation}): do not edit.`,
    `location ~ ^/${t}(?:/|$) {`,
    '    default_type application/json; # for the 400 below (proxied answers keep their own)',
    `    if ($${id}_rest = "") {`,
    `        add_header x-canary-version $${id}_version always;`,
    `        return 400 ${jsonForConfig(badPath)};`,
    '    }',
    `    proxy_pass $${id}_pass$${id}_rest;`,
    `    proxy_set_header Host $${id}_host;`,
    '    proxy_set_header Connection "";',
    '    proxy_http_version 1.1;',
    `    proxy_ssl_server_name on;`,
    `    proxy_ssl_name $${id}_sni;`,
    '    proxy_buffering off;',
    '    proxy_request_buffering off;',
    '    proxy_read_timeout 300s;',
    '    proxy_send_timeout 300s;',
    `    add_header x-canary-version $${id}_version always;`,
    '}',
    `location = ${STATUS_PATH}/${t} {`,
    '    access_log off;',
    '    default_type application/json;',
    '    add_header cache-control no-store always;',
    `    return 200 ${jsonForConfig(status)};`,
    '}',
    '',
  ].join('\n');
}

function renderServer(configDir: string, listen: string): string {
  const notFound = { error: { code: 'unknown_target', message: 'no target is routed at this path (/{target}/{rest})' } };
  return [
    "# Generated by model-canary's NGINX router: the server of every target in this directory. Do not edit.",
    'server {',
    `    listen ${listen};`,
    `    include ${quoted(join(configDir, '*.locations'))};`,
    '    location / {',
    '        default_type application/json;',
    `        return 404 ${jsonForConfig(notFound)};`,
    '    }',
    '}',
    '',
  ].join('\n');
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Temp file beside it (a name no include glob matches), then rename: readers see the old file or the new one. */
async function writeAtomically(path: string, text: string): Promise<void> {
  const temp = `${path}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temp, text, { mode: 0o644 });
  try {
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}

/** GET on a new connection (never a kept-alive one to a worker that an earlier reload retired). */
function getFresh(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((done, fail) => {
    const req = httpRequest(url, { method: 'GET', agent: false, headers: { connection: 'close' }, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', fail);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', fail);
    req.end();
  });
}
