/**
 * API token settings (src/config.ts): API_TOKENS_FILE (YAML or JSON), API_TOKENS (JSON inline),
 * API_TOKEN (an operator named "api-token"); every mistake is an error naming the variable, the
 * file and the entry. And `createApiToken`, what `model-canary token create` prints.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApiToken, hashApiToken, loadApiTokens, loadConfig } from '../../src/config';
import { apiTokensOf } from '../../src/api/app';

const dir = mkdtempSync(join(tmpdir(), 'model-canary-config-tokens-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, content: string) => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};
const A = 'a'.repeat(64);
const B = 'B'.repeat(64);

test('no token configured: an empty list (the API stays open)', () => {
  expect(loadConfig({}).apiTokens).toEqual([]);
  expect(loadApiTokens({ API_TOKENS: '', API_TOKENS_FILE: ' ' })).toEqual([]);
});

test('API_TOKENS_FILE in YAML or JSON, API_TOKENS inline; hashes lower-cased', () => {
  const yaml = file('tokens.yaml', `# who may do what\n- name: alice\n  role: operator\n  sha256: ${A}\n- name: victor\n  role: viewer\n  sha256: ${B}\n`);
  expect(loadApiTokens({ API_TOKENS_FILE: yaml })).toEqual([
    { name: 'alice', role: 'operator', sha256: A },
    { name: 'victor', role: 'viewer', sha256: B.toLowerCase() },
  ]);
  const json = file('tokens.json', JSON.stringify([{ name: 'ci@team', role: 'operator', sha256: A }]));
  expect(loadApiTokens({ API_TOKENS_FILE: json })).toEqual([{ name: 'ci@team', role: 'operator', sha256: A }]);
  expect(loadConfig({ API_TOKENS: JSON.stringify([{ name: 'bob', role: 'viewer', sha256: A }]) }).apiTokens).toEqual([{ name: 'bob', role: 'viewer', sha256: A }]);
});

test('API_TOKEN is an operator named "api-token", alone or beside the list', () => {
  const sha256 = createHash('sha256').update('s3cret').digest('hex');
  expect(hashApiToken('s3cret')).toBe(sha256);
  expect(loadApiTokens({ API_TOKEN: 's3cret' })).toEqual([{ name: 'api-token', role: 'operator', sha256 }]);
  const both = loadApiTokens({ API_TOKEN: 's3cret', API_TOKENS: JSON.stringify([{ name: 'victor', role: 'viewer', sha256: A }]) });
  expect(both.map((t) => `${t.name}:${t.role}`)).toEqual(['victor:viewer', 'api-token:operator']);
  // createApp's view: a bare apiToken (tests, older callers) and a full list agree.
  expect(apiTokensOf({ apiToken: 's3cret' })).toEqual([{ name: 'api-token', role: 'operator', sha256 }]);
  expect(apiTokensOf({ apiToken: 's3cret', apiTokens: loadApiTokens({ API_TOKEN: 's3cret' }) })).toHaveLength(1);
});

test.each<[string, NodeJS.ProcessEnv, string | RegExp]>([
  ['both variables', { API_TOKENS: '[]', API_TOKENS_FILE: '/x' }, 'API_TOKENS_FILE and API_TOKENS are both set: set one of them (the file, or the same list inline as JSON)'],
  ['a missing file', { API_TOKENS_FILE: '/nonexistent/tokens.yaml' }, 'API_TOKENS_FILE: cannot read "/nonexistent/tokens.yaml" (no such file)'],
  ['inline JSON that is not', { API_TOKENS: '[{name: alice}]' }, /^API_TOKENS is not valid JSON \(.*\); it must be a list such as \[\{"name":"alice","role":"operator","sha256":"<hex>"\}\]$/],
  ['not a list', { API_TOKENS: '{"name":"alice"}' }, /^API_TOKENS must be a list of tokens such as /],
  ['an empty list', { API_TOKENS: '[]' }, 'API_TOKENS lists no token: the API would be open to anyone; add one, or unset the variable'],
  ['an entry that is not an object', { API_TOKENS: '["abc"]' }, 'API_TOKENS: entry 1 must be an object {name, role, sha256}'],
  ['a bad name', { API_TOKENS: JSON.stringify([{ name: 'al ice', role: 'viewer', sha256: A }]) }, 'API_TOKENS: entry 1 ("al ice"): name must be 1 to 64 letters, digits and . _ @ + - (starting with a letter or digit), got "al ice"'],
  ['no name', { API_TOKENS: JSON.stringify([{ role: 'viewer', sha256: A }]) }, /^API_TOKENS: entry 1: name must be .*, got null$/],
  ['a bad role', { API_TOKENS: JSON.stringify([{ name: 'alice', role: 'viewer', sha256: A }, { name: 'bob', role: 'admin', sha256: B }]) }, 'API_TOKENS: entry 2 ("bob"): role must be one of viewer, operator, got "admin"'],
  ['a token, not its hash', { API_TOKENS: JSON.stringify([{ name: 'alice', role: 'viewer', sha256: 'mct_abc' }]) }, 'API_TOKENS: entry 1 ("alice"): sha256 must be the hex SHA-256 of the token (64 hex digits), got "mct_abc"'],
  ['the token itself in the list', { API_TOKENS: JSON.stringify([{ name: 'alice', role: 'viewer', token: 'x' }]) }, 'API_TOKENS: entry 1 ("alice") has unknown field "token" (never put the token itself in the list: its sha256 only); expected name, role, sha256'],
  ['a name twice', { API_TOKENS: JSON.stringify([{ name: 'alice', role: 'viewer', sha256: A }, { name: 'alice', role: 'operator', sha256: B }]) }, 'API_TOKENS: entry 2 ("alice"): name "alice" is listed twice; each token needs its own name (it is what the audit records)'],
  ['a hash twice', { API_TOKENS: JSON.stringify([{ name: 'alice', role: 'viewer', sha256: A }, { name: 'bob', role: 'operator', sha256: A.toUpperCase() }]) }, /^API tokens "alice" and "bob" have the same sha256/],
  ['API_TOKEN clashing with an entry', { API_TOKEN: 'x', API_TOKENS: JSON.stringify([{ name: 'api-token', role: 'viewer', sha256: A }]) }, /^API_TOKEN is recorded as "api-token", a name API_TOKENS also has/],
])('%s is an error naming the variable and the entry', (_what, env, message) => {
  expect(() => loadConfig(env)).toThrow(message);
});

test('the file: its path in the error, YAML that is not', () => {
  const broken = file('broken.yaml', '- name: alice\n  role: [operator\n');
  expect(() => loadApiTokens({ API_TOKENS_FILE: broken })).toThrow(new RegExp(`^API_TOKENS_FILE "${broken}" is neither YAML nor JSON: `));
  const badEntry = file('bad.yaml', `- name: alice\n  role: operator\n  sha256: ${A}\n- name: victor\n  role: reader\n  sha256: ${B}\n`);
  expect(() => loadApiTokens({ API_TOKENS_FILE: badEntry })).toThrow(`API_TOKENS_FILE "${badEntry}": entry 2 ("victor"): role must be one of viewer, operator, got "reader"`);
  expect(() => loadApiTokens({ API_TOKENS_FILE: dir })).toThrow(`API_TOKENS_FILE: cannot read "${dir}" (a directory)`);
});

test('createApiToken: a random token and the entry that matches it', () => {
  const { token, entry } = createApiToken('alice', 'operator');
  expect(token).toMatch(/^mct_[A-Za-z0-9_-]{43}$/);
  expect(entry).toEqual({ name: 'alice', role: 'operator', sha256: hashApiToken(token) });
  expect(createApiToken('alice', 'operator').token).not.toBe(token);
  // The entry it prints is one the settings take.
  expect(loadApiTokens({ API_TOKENS: JSON.stringify([entry]) })).toEqual([entry]);
  expect(() => createApiToken('a b', 'viewer')).toThrow(/^token name "a b" is not valid/);
  expect(() => createApiToken('alice', 'admin' as never)).toThrow('role "admin" is not valid: it must be one of viewer, operator');
});
