/**
 * `model-canary token create`: a random token and the entry for API_TOKENS_FILE / API_TOKENS
 * (so nobody hashes by hand); and what the CLI says when the API answers 403 (a viewer token).
 */
import { runCli, type CliIo } from '../../src/cli/program';
import { hashApiToken, loadApiTokens } from '../../src/config';
import { listen } from '../helpers/http';

function io(env: NodeJS.ProcessEnv = {}): CliIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => err.push(t) }, env };
}

test('token create prints a token and its entry, in YAML and JSON, that the settings take', async () => {
  const run = io();
  expect(await runCli(['token', 'create', '--name', 'alice', '--role', 'operator'], run)).toBe(0);
  const text = run.out.join('');
  const token = /^ {2}(mct_\S+)$/m.exec(text)?.[1];
  expect(token).toBeDefined();
  const sha256 = hashApiToken(token!);
  expect(text).toContain(`  - name: alice\n    role: operator\n    sha256: ${sha256}\n`);
  const json = /^ {2}(\[\{.*\}\])$/m.exec(text)?.[1];
  expect(loadApiTokens({ API_TOKENS: json })).toEqual([{ name: 'alice', role: 'operator', sha256 }]);
  expect(run.err).toEqual([]);
});

test('token create --json; a bad name or role is refused', async () => {
  const run = io();
  expect(await runCli(['token', 'create', '-n', 'ci-bot', '-r', 'viewer', '--json'], run)).toBe(0);
  const made = JSON.parse(run.out.join(''));
  expect(made).toEqual({ token: expect.stringMatching(/^mct_/), entry: { name: 'ci-bot', role: 'viewer', sha256: hashApiToken(made.token) } });

  const badName = io();
  expect(await runCli(['token', 'create', '--name', 'a b', '--role', 'viewer'], badName)).toBe(1);
  expect(badName.err.join('')).toMatch(/^model-canary: token name "a b" is not valid/);
  const badRole = io();
  expect(await runCli(['token', 'create', '--name', 'alice', '--role', 'admin'], badRole)).toBe(1);
  expect(badRole.err.join('')).toContain("argument 'admin' is invalid. Allowed choices are viewer, operator.");
  const noRole = io();
  expect(await runCli(['token', 'create', '--name', 'alice'], noRole)).toBe(1);
});

test('a 403 from the API: the CLI says which role it needs', async () => {
  const api = await listen((_req, res) => {
    res.statusCode = 403;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ error: { code: 'forbidden', message: 'token "victor" has role viewer; POST /v1/rollouts/rollout-chat/pause needs role operator' } }));
  });
  try {
    const run = io({ API_URL: api.url, API_TOKEN: 'x' });
    expect(await runCli(['pause', 'chat'], run)).toBe(1);
    expect(run.err.join('')).toBe(
      'model-canary: the API refused the request (403 forbidden: token "victor" has role viewer; POST /v1/rollouts/rollout-chat/pause needs role operator); use a token with that role (API_TOKEN)\n',
    );
  } finally {
    await api.close();
  }
});
