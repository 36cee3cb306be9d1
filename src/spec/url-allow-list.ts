/**
 * URL_ALLOW_LIST: which URLs a rollout may make the control plane (and the data plane it drives)
 * call — the versions' `url`s the gateway or NGINX send traffic to, the evaluator the gateway
 * posts shadow pairs to, the webhook the worker notifies, the Prometheus it queries. Unset:
 * every URL (as before). Pure: parsing and matching only; the API checks a start's spec with
 * `urlAllowListIssues`, the activities each URL they are about to use (src/activities/index.ts).
 *
 * A pattern is `scheme://host[:port][/path]`, matched against the URL as WHATWG URL parses it
 * (what undici and the gateway then connect to), never against its text:
 *
 * - scheme: `http` or `https` (any case), exactly;
 * - host: a name (any case; a trailing dot is ignored), `*.example.com` (any name ending in
 *   `.example.com`, at any depth, but not `example.com` itself), `*` (any host), an IPv4 literal
 *   (`127.0.0.1`) or an IPv6 literal in brackets (`[::1]`); IP literals are compared after
 *   normalisation, so `http://2130706433/` is 127.0.0.1 and `[0:0::1]` is `[::1]`;
 * - port: a number, `*` (any), or none: the scheme's default only (80, 443);
 * - path: none or `/`: any path; otherwise a path prefix that matches whole segments: `/v1`
 *   matches `/v1` and `/v1/chat`, never `/v10` (a trailing `/` changes nothing). Under a path
 *   prefix, a URL whose path holds an encoded `/` or `\` (`%2F`, `%5C`) does not match.
 *
 * Credentials in a URL (`http://127.0.0.1@169.254.169.254/`) are not its host: the host is what
 * is compared. Patterns carry no credentials, query or fragment.
 */

/** The setting's name, as error messages name it. */
export const URL_ALLOW_LIST_SETTING = 'URL_ALLOW_LIST';

export interface UrlPattern {
  /** As written (trimmed): for messages. */
  text: string;
  scheme: 'http:' | 'https:';
  /** `{ any: true }`, an exact host (normalised, as URL.hostname gives it), or a suffix (`.example.com`) for `*.example.com`. */
  host: { any: true } | { exact: string } | { suffix: string };
  /** undefined: any port. */
  port: number | undefined;
  /** '' for any path; otherwise the prefix without a trailing '/'. */
  path: string;
}

export interface UrlAllowList {
  /** The setting it came from (URL_ALLOW_LIST). */
  setting: string;
  patterns: readonly UrlPattern[];
}

const DEFAULT_PORTS: Record<UrlPattern['scheme'], number> = { 'http:': 80, 'https:': 443 };

/** `scheme://host[:port][/path]`; host a name, `*`, `*.suffix` or `[IPv6]`. */
const PATTERN = /^(https?):\/\/(\[[^\]/]*\]|[^/:?#@[\]]+)(?::(\*|\d{1,5}))?(\/[^?#]*)?$/i;

/**
 * Parses a comma-separated list of patterns (blanks around each are ignored). Throws an error
 * naming `setting` and the pattern for anything that is not a pattern.
 */
export function parseUrlAllowList(text: string, setting = URL_ALLOW_LIST_SETTING): UrlAllowList {
  const items = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new Error(`${setting} lists no pattern: give comma-separated URL patterns such as "http://127.0.0.1:*, https://*.models.internal", or unset it`);
  return { setting, patterns: items.map((item) => parsePattern(item, setting)) };
}

function parsePattern(text: string, setting: string): UrlPattern {
  const bad = (why: string) => new Error(`${setting}: "${text}" is not a URL pattern: ${why} (a pattern is scheme://host[:port][/path], e.g. "http://127.0.0.1:*" or "https://*.models.internal/v1")`);
  const m = PATTERN.exec(text);
  if (!m) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text) && !/^https?:\/\//i.test(text)) throw bad('the scheme must be http or https');
    if (!/^https?:\/\//i.test(text)) throw bad('it must start with http:// or https://');
    if (/@/.test(text)) throw bad('it must not carry credentials');
    if (/[?#]/.test(text)) throw bad('it must not have a query or fragment');
    throw bad('its host or port is malformed');
  }
  const scheme = `${m[1]!.toLowerCase()}:` as UrlPattern['scheme'];
  const hostText = m[2]!;
  const portText = m[3];
  const pathText = m[4] ?? '';

  let host: UrlPattern['host'];
  if (hostText === '*') host = { any: true };
  else if (hostText.startsWith('*.')) {
    const rest = hostText.slice(2);
    if (rest.includes('*')) throw bad('"*" may only stand alone or as the first label ("*.example.com")');
    const normalised = hostnameOf(`${scheme}//${rest}`);
    if (normalised === undefined || normalised === '' || isIpLiteral(normalised)) throw bad(`"*.${rest}" must be followed by a host name`);
    host = { suffix: `.${stripDot(normalised)}` };
  } else {
    if (hostText.includes('*')) throw bad('"*" may only stand alone or as the first label ("*.example.com")');
    const normalised = hostnameOf(`${scheme}//${hostText}`);
    if (normalised === undefined || normalised === '') throw bad(`"${hostText}" is not a host name or IP address`);
    host = { exact: stripDot(normalised) };
  }

  let port: number | undefined;
  if (portText === '*') port = undefined;
  else if (portText !== undefined) {
    port = Number(portText);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad(`port ${portText} is not 1-65535`);
  } else port = DEFAULT_PORTS[scheme];

  let path = '';
  if (pathText !== '' && pathText !== '/') {
    let parsed: string;
    try {
      parsed = new URL(`${scheme}//placeholder${pathText}`).pathname;
    } catch {
      throw bad('its path is malformed');
    }
    path = parsed.replace(/\/+$/, '');
  }
  return { text, scheme, host, port, path };
}

function hostnameOf(text: string): string | undefined {
  try {
    return new URL(text).hostname;
  } catch {
    return undefined;
  }
}

const stripDot = (host: string) => (host.endsWith('.') ? host.slice(0, -1) : host);
const isIpLiteral = (host: string) => host.startsWith('[') || /^\d+\.\d+\.\d+\.\d+$/.test(host);

/** Whether `list` allows `url` (an unparseable or non-http(s) URL never is). */
export function urlAllowed(list: UrlAllowList, url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return false;
  return list.patterns.some((p) => patternMatches(p, parsed));
}

function patternMatches(p: UrlPattern, url: URL): boolean {
  if (url.protocol !== p.scheme) return false;
  const host = stripDot(url.hostname);
  if (host === '') return false;
  if ('exact' in p.host && host !== p.host.exact) return false;
  if ('suffix' in p.host && (isIpLiteral(host) || !host.endsWith(p.host.suffix) || host.length === p.host.suffix.length)) return false;
  const port = url.port === '' ? DEFAULT_PORTS[p.scheme] : Number(url.port);
  if (p.port !== undefined && port !== p.port) return false;
  if (p.path === '') return true;
  if (/%(2f|5c)/i.test(url.pathname)) return false;
  return url.pathname === p.path || url.pathname.startsWith(`${p.path}/`);
}

/** The patterns, for messages: `http://127.0.0.1:*, https://*.models.internal`. */
export function describeUrlAllowList(list: UrlAllowList): string {
  return list.patterns.map((p) => p.text).join(', ');
}

/** Why `url` (at `path`, e.g. `candidate.url`) is refused. */
export function urlRefusal(list: UrlAllowList, path: string, url: string): string {
  return `${path} ${JSON.stringify(url)} is not allowed by ${list.setting} (${describeUrlAllowList(list)}): the control plane calls only URLs that match one of its patterns`;
}

/** What of a spec (or request) holds URLs the control plane or the data plane it drives will call. */
export interface SpecWithUrls {
  baseline?: { url?: string | undefined } | undefined;
  candidate?: { url?: string | undefined } | undefined;
  analysis?: { evaluator?: { url?: string | undefined } | undefined } | undefined;
  notify?: { webhook?: string | undefined } | undefined;
  metrics?: { kind: string; url?: string | undefined } | undefined;
}

/** Each URL a spec carries, with the field it is at (`candidate.url`, `metrics.url`, …). */
export function specUrls(spec: SpecWithUrls): Array<{ path: string; url: string }> {
  const found: Array<{ path: string; url: string }> = [];
  const add = (path: string, url: unknown) => {
    if (typeof url === 'string') found.push({ path, url });
  };
  add('baseline.url', spec.baseline?.url);
  add('candidate.url', spec.candidate?.url);
  add('analysis.evaluator.url', spec.analysis?.evaluator?.url);
  add('notify.webhook', spec.notify?.webhook);
  add('metrics.url', spec.metrics?.url);
  return found;
}

/** One issue per URL of `spec` that `list` does not allow; none when `list` is undefined (unset: all allowed). */
export function urlAllowListIssues(list: UrlAllowList | undefined, spec: SpecWithUrls): Array<{ path: string; message: string }> {
  if (!list) return [];
  return specUrls(spec)
    .filter(({ url }) => !urlAllowed(list, url))
    .map(({ path, url }) => ({ path, message: urlRefusal(list, path, url) }));
}
