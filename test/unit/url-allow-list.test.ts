/** URL_ALLOW_LIST's patterns and matching (src/spec/url-allow-list.ts), and how loadConfig reads the setting. */
import { loadConfig } from '../../src/config';
import { parseRolloutRequest, parseUrlAllowList, specUrls, urlAllowListIssues, urlAllowed } from '../../src/spec';

const allows = (patterns: string, url: string) => urlAllowed(parseUrlAllowList(patterns), url);

describe('matching', () => {
  test.each([
    // host and port
    ['http://127.0.0.1:*', 'http://127.0.0.1:9001', true],
    ['http://127.0.0.1:*', 'http://127.0.0.1/', true],
    ['http://127.0.0.1:*', 'http://127.0.0.2:9001', false],
    ['http://127.0.0.1:9001', 'http://127.0.0.1:9001/v1', true],
    ['http://127.0.0.1:9001', 'http://127.0.0.1:9002/v1', false],
    // no port in the pattern: the scheme's default only
    ['http://models.internal', 'http://models.internal/', true],
    ['http://models.internal', 'http://models.internal:80/', true],
    ['http://models.internal', 'http://models.internal:8080/', false],
    ['https://models.internal', 'https://models.internal:443/x', true],
    // scheme: exactly
    ['https://models.internal', 'http://models.internal/', false],
    ['http://models.internal:*', 'https://models.internal/', false],
    ['HTTP://Models.Internal:*', 'http://models.internal:1/', true],
    // case of the host, trailing dot
    ['http://models.internal:*', 'http://MODELS.Internal:9/', true],
    ['http://models.internal:*', 'http://models.internal.:9/', true],
    // userinfo is not the host
    ['http://127.0.0.1:*', 'http://127.0.0.1@169.254.169.254/', false],
    ['http://127.0.0.1:*', 'http://127.0.0.1:80@169.254.169.254/latest/meta-data', false],
    ['http://169.254.169.254', 'http://user:pw@169.254.169.254/', true],
    // IPv4 in other notations is the same address
    ['http://127.0.0.1:*', 'http://2130706433:9001/', true],
    ['http://127.0.0.1:*', 'http://0x7f.0.0.1:9001/', true],
    ['http://10.0.0.1:*', 'http://169.254.169.254/', false],
    // IPv6 literals, normalised; a v4-mapped address is not the v4 pattern
    ['http://[::1]:*', 'http://[::1]:9001/', true],
    ['http://[::1]:*', 'http://[0:0:0:0:0:0:0:1]:9001/', true],
    ['http://[0::1]:9001', 'http://[::1]:9001/', true],
    ['http://[::1]:*', 'http://127.0.0.1:9001/', false],
    ['http://127.0.0.1:*', 'http://[::ffff:127.0.0.1]:9001/', false],
    ['http://[::1]:*', 'http://[::2]:9001/', false],
    // host globs
    ['https://*.models.internal', 'https://chat.models.internal/v1', true],
    ['https://*.models.internal', 'https://a.b.models.internal/', true],
    ['https://*.models.internal', 'https://models.internal/', false],
    ['https://*.models.internal', 'https://evilmodels.internal/', false],
    ['https://*.models.internal', 'https://models.internal.evil.com/', false],
    ['https://*.models.internal', 'https://chat.models.internal.:443/', true],
    ['http://*:8080', 'http://anything.example:8080/', true],
    ['http://*:8080', 'http://anything.example:8081/', false],
    // path prefixes match whole segments
    ['https://hooks.example.com/canary', 'https://hooks.example.com/canary', true],
    ['https://hooks.example.com/canary', 'https://hooks.example.com/canary/', true],
    ['https://hooks.example.com/canary', 'https://hooks.example.com/canary/x?y=1', true],
    ['https://hooks.example.com/canary', 'https://hooks.example.com/canary-evil', false],
    ['https://hooks.example.com/canary', 'https://hooks.example.com/canaryx/y', false],
    ['https://hooks.example.com/canary/', 'https://hooks.example.com/canary', true],
    ['https://hooks.example.com/canary', 'https://hooks.example.com/', false],
    ['https://hooks.example.com/canary', 'https://hooks.example.com/Canary/x', false],
    // dot segments are resolved before matching; encoded slashes never match under a prefix
    ['https://hooks.example.com/canary', 'https://hooks.example.com/canary/../admin', false],
    ['https://hooks.example.com/canary', 'https://hooks.example.com/canary/%2e%2e/admin', false],
    ['https://hooks.example.com/canary', 'https://hooks.example.com/canary/..%2fadmin', false],
    ['https://hooks.example.com/canary', 'https://hooks.example.com/canary%2F..%2Fadmin', false],
    ['https://hooks.example.com/canary', 'https://hooks.example.com/canary\\..\\admin', false],
    ['https://hooks.example.com/', 'https://hooks.example.com/any/%2Fpath', true],
    // not http(s), or not a URL
    ['http://127.0.0.1:*', 'file:///etc/passwd', false],
    ['http://127.0.0.1:*', 'not a url', false],
  ])('%s allows %s: %s', (pattern, url, expected) => {
    expect(allows(pattern, url)).toBe(expected);
  });

  test('a list allows what any of its patterns allows', () => {
    const list = 'http://127.0.0.1:*, https://*.models.internal ,https://hooks.example.com/canary';
    expect(allows(list, 'http://127.0.0.1:9001')).toBe(true);
    expect(allows(list, 'https://a.models.internal/')).toBe(true);
    expect(allows(list, 'https://hooks.example.com/canary/rollouts')).toBe(true);
    expect(allows(list, 'http://169.254.169.254/latest/meta-data/')).toBe(false);
  });
});

describe('patterns', () => {
  test.each([
    ['127.0.0.1:*', /must start with http:\/\/ or https:\/\//],
    ['ftp://files.internal', /scheme must be http or https/],
    ['http://user@models.internal', /credentials/],
    ['http://models.internal/?x=1', /query or fragment/],
    ['http://models.internal#x', /query or fragment/],
    ['http://mod*els.internal', /"\*" may only stand alone or as the first label/],
    ['http://*.*.internal', /"\*" may only stand alone or as the first label/],
    ['http://*.10.0.0.1', /must be followed by a host name/],
    ['http://models.internal:0', /port 0 is not 1-65535/],
    ['http://models.internal:70000', /port 70000 is not 1-65535/],
    ['http://models.internal:8o', /host or port is malformed/],
    ['http://[::1', /host or port is malformed/],
    ['http://', /host or port is malformed/],
  ])('%s is refused, naming the setting and the pattern', (pattern, why) => {
    expect(() => parseUrlAllowList(`http://127.0.0.1:*, ${pattern}`)).toThrow(why);
    expect(() => parseUrlAllowList(pattern)).toThrow(`URL_ALLOW_LIST: "${pattern}" is not a URL pattern`);
  });

  test('a list of no pattern is an error; blanks between commas are ignored', () => {
    expect(() => parseUrlAllowList(' , ,')).toThrow(/URL_ALLOW_LIST lists no pattern/);
    expect(parseUrlAllowList('http://a.internal,, http://b.internal,').patterns.map((p) => p.text)).toEqual(['http://a.internal', 'http://b.internal']);
  });
});

describe('URL_ALLOW_LIST in loadConfig', () => {
  test('unset or blank: no list (every URL allowed, as before)', () => {
    expect(loadConfig({}).urlAllowList).toBeUndefined();
    expect(loadConfig({ URL_ALLOW_LIST: '  ' }).urlAllowList).toBeUndefined();
  });

  test('set: parsed; a bad pattern is an error naming the variable', () => {
    expect(loadConfig({ URL_ALLOW_LIST: 'http://127.0.0.1:*' }).urlAllowList?.patterns).toHaveLength(1);
    expect(() => loadConfig({ URL_ALLOW_LIST: 'http://127.0.0.1:*, 169.254.169.254' })).toThrow(/^URL_ALLOW_LIST: "169.254.169.254" is not a URL pattern/);
  });

  test('TEMPORAL_UI_WRITE_ACTIONS: off by default; true/false and the like; anything else is an error naming it', () => {
    expect(loadConfig({}).temporalUiWriteActions).toBe(false);
    expect(loadConfig({ TEMPORAL_UI_WRITE_ACTIONS: 'true' }).temporalUiWriteActions).toBe(true);
    expect(loadConfig({ TEMPORAL_UI_WRITE_ACTIONS: 'off' }).temporalUiWriteActions).toBe(false);
    expect(() => loadConfig({ TEMPORAL_UI_WRITE_ACTIONS: 'sure' })).toThrow(/TEMPORAL_UI_WRITE_ACTIONS must be true or false .*got "sure"/);
  });
});

describe('the URLs of a spec', () => {
  const parse = (input: unknown) => {
    const parsed = parseRolloutRequest(input);
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
    return parsed.request;
  };
  const base = {
    target: 'chat',
    baseline: { version: 'v1', url: 'http://127.0.0.1:9001' },
    candidate: { version: 'v2', url: 'http://169.254.169.254/latest' },
    notify: { webhook: 'https://hooks.example.com/canary' },
  };
  const shadow = parse({ ...base, steps: [{ shadow: 10, bake: '1m' }, { weight: 100 }], analysis: { evaluator: { url: 'http://127.0.0.1@169.254.169.254/judge' } } });
  const prometheus = parse({ ...base, steps: [{ weight: 100 }], metrics: { kind: 'prometheus', url: 'http://127.0.0.1:9090', preset: 'gateway' } });

  test('every URL field, by its path', () => {
    expect(specUrls(shadow)).toEqual([
      { path: 'baseline.url', url: 'http://127.0.0.1:9001' },
      { path: 'candidate.url', url: 'http://169.254.169.254/latest' },
      { path: 'analysis.evaluator.url', url: 'http://127.0.0.1@169.254.169.254/judge' },
      { path: 'notify.webhook', url: 'https://hooks.example.com/canary' },
    ]);
    expect(specUrls(prometheus).map((u) => u.path)).toEqual(['baseline.url', 'candidate.url', 'notify.webhook', 'metrics.url']);
    expect(specUrls(parse({ target: 'chat', candidate: { version: 'v2', url: 'http://127.0.0.1:9002' }, steps: [{ weight: 100 }] }))).toEqual([
      { path: 'candidate.url', url: 'http://127.0.0.1:9002' },
    ]);
  });

  test('an issue per URL outside the list, naming the field and the setting; none without a list', () => {
    expect(urlAllowListIssues(undefined, shadow)).toEqual([]);
    const list = parseUrlAllowList('http://127.0.0.1:*');
    const issues = urlAllowListIssues(list, shadow);
    expect(issues.map((i) => i.path)).toEqual(['candidate.url', 'analysis.evaluator.url', 'notify.webhook']);
    expect(issues[0]!.message).toBe('candidate.url "http://169.254.169.254/latest" is not allowed by URL_ALLOW_LIST (http://127.0.0.1:*): the control plane calls only URLs that match one of its patterns');
    expect(urlAllowListIssues(parseUrlAllowList('http://127.0.0.1:9001'), prometheus).map((i) => i.path)).toEqual(['candidate.url', 'notify.webhook', 'metrics.url']);
  });
});
