/**
 * Connecting to a Temporal cluster over TLS: NGINX as a real TLS terminator (`ssl_verify_client
 * on` for mTLS; an `authorization: Bearer <key>` check for API keys) passing gRPC to a Temporal
 * dev server. Certificates are made here with openssl (test/helpers/tls.ts).
 *
 * The real worker and API processes (`node --import tsx src/worker.ts`, `src/api/main.ts`)
 * connect through it with the TEMPORAL_TLS_* settings, and a rollout started through the REST API
 * is promoted. A worker with an API key passes the key check. Misconfigured workers — no client
 * certificate, an untrusted one, a wrong server name, a wrong or missing API key, no CA, plaintext,
 * a missing file — exit non-zero at once with an error that names what to fix.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import pino from 'pino';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startModelServer, type ModelServer } from '../../src/demo/model-server';
import { startTraffic, type TrafficRun } from '../../src/demo/traffic';
import { startGateway, type Gateway } from '../../src/gateway/server';
import type { RolloutStatus } from '../../src/workflows/status';
import { FINAL_PHASES, expectEnded } from '../helpers/control-plane';
import { startDevServer, uniqueTaskQueue } from '../helpers/dev-server';
import { e2eSpec, freePort, getRoute, putRoute, spawnTs, waitForHealthy, waitForOutput, weightsOf, type Proc } from '../helpers/e2e';
import { eventually, freePorts, request } from '../helpers/http';
import { uniqueTarget } from '../helpers/specs';
import { makeCertificates, startGrpcTlsProxy, type Certificates, type GrpcTlsProxy } from '../helpers/tls';

const API_KEY = 'mc-test-key-7f3a9c';
const dir = mkdtempSync(join(tmpdir(), 'model-canary-tls-'));
const taskQueue = uniqueTaskQueue('tls');
let env: TestWorkflowEnvironment;
let certs: Certificates;
let proxy: GrpcTlsProxy;
let gateway: Gateway;
let traffic: TrafficRun | undefined;
const models: ModelServer[] = [];
const procs: Proc[] = [];

/** Every connection setting, blank unless given: nothing leaks in from the test's own environment. */
function temporalEnv(settings: Record<string, string>): NodeJS.ProcessEnv {
  return {
    TEMPORAL_NAMESPACE: env.namespace ?? 'default',
    TEMPORAL_TLS: '', TEMPORAL_TLS_CA: '', TEMPORAL_TLS_CERT: '', TEMPORAL_TLS_KEY: '', TEMPORAL_TLS_SERVER_NAME: '', TEMPORAL_API_KEY: '',
    TASK_QUEUE: taskQueue,
    GATEWAY_URL: gateway.url,
    GATEWAY_ADMIN_TOKEN: '',
    ...settings,
  };
}

const mtls = () => ({ TEMPORAL_ADDRESS: proxy.addresses.mtls!, TEMPORAL_TLS_CA: certs.ca, TEMPORAL_TLS_CERT: certs.clientCert, TEMPORAL_TLS_KEY: certs.clientKey });

function spawn(name: string, file: string, settings: Record<string, string>): Proc {
  const proc = spawnTs(name, file, temporalEnv(settings));
  procs.push(proc);
  return proc;
}

beforeAll(async () => {
  certs = makeCertificates(dir);
  const [devServer, gw, v1, v2] = await Promise.all([
    startDevServer(),
    startGateway({ port: 0, dataDir: join(dir, 'gateway'), logger: pino({ level: 'silent' }) }),
    startModelServer({ version: 'v1', latencyMs: 30, latencySpread: 0.1 }),
    startModelServer({ version: 'v2', latencyMs: 30, latencySpread: 0.1 }),
  ]);
  env = devServer;
  gateway = gw;
  models.push(v1, v2);
  proxy = await startGrpcTlsProxy({
    dir,
    upstream: env.address,
    certs,
    listeners: [{ name: 'mtls', mtls: true }, { name: 'apikey', apiKey: API_KEY }],
  });
}, 60_000);

afterAll(async () => {
  traffic?.stop();
  await traffic?.done;
  await Promise.all(procs.map((p) => p.stop(5_000)));
  await gateway?.close(1_000);
  await Promise.all(models.map((m) => m.close()));
  await proxy?.stop();
  await env?.teardown();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

/** The process's exit, or undefined when it still runs after `timeoutMs`. */
async function exited(proc: Proc, timeoutMs: number): Promise<{ code: number | null } | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), timeoutMs)));
  try {
    return await Promise.race([proc.exit, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Spawns a worker that must fail: it exits 1 (within `timeoutMs`: no hang, no retry loop), printing
 * `expected`. (Most of the time is tsx loading the worker's modules; the refusal itself takes ms.)
 */
async function expectRefused(name: string, settings: Record<string, string>, expected: RegExp, timeoutMs = 90_000): Promise<string> {
  const proc = spawn(name, 'src/worker.ts', settings);
  const started = Date.now();
  const exit = await exited(proc, timeoutMs);
  const output = proc.output.join('');
  if (!exit) throw new Error(`${name}: still running after ${timeoutMs} ms\n${output}`);
  expect({ name, code: exit.code }).toEqual({ name, code: 1 });
  if (!expected.test(output)) throw new Error(`${name}: expected ${String(expected)} in:\n${output}`);
  expect(output).not.toContain(API_KEY);
  return `${name}: ${Date.now() - started} ms`;
}

it('worker and API connect through an mTLS terminator; a rollout is promoted; an API-key worker passes', async () => {
  const [v1, v2] = models as [ModelServer, ModelServer];
  const apiPort = await freePort();
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const worker = spawn('worker (mTLS)', 'src/worker.ts', mtls());
  const keyWorker = spawn('worker (API key)', 'src/worker.ts', {
    TEMPORAL_ADDRESS: proxy.addresses.apikey!, TEMPORAL_TLS_CA: certs.ca, TEMPORAL_API_KEY: API_KEY,
  });
  const api = spawn('api (mTLS)', 'src/api/main.ts', { ...mtls(), API_PORT: String(apiPort), API_HOST: '127.0.0.1', API_TOKEN: '', TEMPORAL_UI_URL: 'http://127.0.0.1:8233' });

  await waitForHealthy(apiUrl, 60_000).catch((err: Error) => {
    throw new Error(`${err.message}\n--- api ---\n${api.output.join('')}`);
  });
  const health = await request(apiUrl, 'GET', '/healthz');
  expect(health).toMatchObject({ status: 200, body: { ok: true, temporal: { ok: true } } });
  await waitForOutput(worker, /worker polling task queue .* \(mTLS;/, 120_000);
  await waitForOutput(keyWorker, /worker polling task queue .* \(TLS, API key;/, 120_000);

  const target = uniqueTarget('tls');
  await putRoute(gateway.url, target, [{ name: 'v1', url: v1.url, weight: 100 }]);
  traffic = startTraffic({ gatewayUrl: gateway.url, target, rate: 40, durationMs: Number.POSITIVE_INFINITY, users: 500 });
  const res = await request<RolloutStatus>(apiUrl, 'POST', '/v1/rollouts', {
    body: e2eSpec(target, v1.url, v2.url, { steps: [{ weight: 30, bake: '3s' }, { weight: 100 }] }),
  });
  expect(res.status).toBe(201);
  const final = await eventually(async () => {
    const s = (await request<RolloutStatus>(apiUrl, 'GET', `/v1/rollouts/${res.body.id}`)).body;
    return FINAL_PHASES.includes(s.phase) ? s : undefined;
  }, 60_000, 'the rollout to end');
  traffic.stop();
  await traffic.done;
  expectEnded(final, 'promoted');
  expect(weightsOf(await getRoute(gateway.url, target))).toEqual({ v1: 0, v2: 100 });

  // Through the terminator: mTLS calls carry the client certificate; the SDK sends the key as
  // `authorization: Bearer <key>`; the worker with the key really polls.
  const log = proxy.accessLog();
  expect(log).toMatch(/^mtls 200 "CN=model-canary-worker" auth="-" \/temporal\.api\.workflowservice\.v1\.WorkflowService\/StartWorkflowExecution$/m);
  expect(log).toMatch(new RegExp(`^apikey 200 "-" auth="Bearer ${API_KEY}" /temporal\\.api\\.workflowservice\\.v1\\.WorkflowService/GetSystemInfo$`, 'm'));
  expect(log).not.toMatch(/^mtls 200 "-"/m); // nothing passed mTLS without a certificate
  expect(log).not.toMatch(/^apikey 200 .*auth="(?!Bearer mc-test-key-7f3a9c")/m);
}, 240_000);

it('misconfigured workers are refused and exit 1 at once, saying what to fix', async () => {
  const base = { TEMPORAL_ADDRESS: proxy.addresses.mtls!, TEMPORAL_TLS_CA: certs.ca };
  const timings = await Promise.all([
    expectRefused('no client certificate', base, /cannot connect to Temporal at 127\.0\.0\.1:\d+ \(TLS\): the TLS endpoint answered HTTP 400, as NGINX does when it requires a client certificate and none was sent: set TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY/),
    expectRefused('untrusted client certificate', { ...base, TEMPORAL_TLS_CERT: certs.untrustedCert, TEMPORAL_TLS_KEY: certs.untrustedKey },
      /\(mTLS\): the TLS endpoint answered HTTP 400, as NGINX does when it refuses a client certificate: is the client certificate TEMPORAL_TLS_CERT \(.*untrusted\.pem\) signed by a CA the server trusts/),
    expectRefused('wrong server name', { ...mtls(), TEMPORAL_TLS_SERVER_NAME: 'wrong.example' },
      /the server's certificate is not valid for TEMPORAL_TLS_SERVER_NAME \(wrong\.example\): set TEMPORAL_TLS_SERVER_NAME to a name the certificate holds.*NotValidFor/),
    expectRefused('server CA not given', { TEMPORAL_ADDRESS: proxy.addresses.mtls!, TEMPORAL_TLS_CERT: certs.clientCert, TEMPORAL_TLS_KEY: certs.clientKey },
      /not signed by a CA this system trusts: set TEMPORAL_TLS_CA/),
    expectRefused('wrong API key', { TEMPORAL_ADDRESS: proxy.addresses.apikey!, TEMPORAL_TLS_CA: certs.ca, TEMPORAL_API_KEY: 'not-the-key' },
      /\(TLS, API key\): the server refused the credentials: check TEMPORAL_API_KEY.*403 Forbidden/),
    expectRefused('no API key', { TEMPORAL_ADDRESS: proxy.addresses.apikey!, TEMPORAL_TLS_CA: certs.ca },
      /\(TLS\): the server refused the request: does it need an API key \(TEMPORAL_API_KEY\)/),
    expectRefused('plaintext to a TLS port', { TEMPORAL_ADDRESS: proxy.addresses.apikey!, TEMPORAL_API_KEY: API_KEY, TEMPORAL_TLS: 'false' },
      /\(plaintext, API key\): the server may expect TLS: set TEMPORAL_TLS=true/),
    // (Settings errors — a missing file, a certificate without its key — are in test/unit/config-temporal.test.ts.)
    expectRefused('missing CA file', { ...mtls(), TEMPORAL_TLS_CA: join(dir, 'nope.pem') }, /worker: TEMPORAL_TLS_CA: cannot read ".*nope\.pem" \(no such file\)/),
  ]);
  console.log(`refusals (in parallel, process start to exit):\n  ${timings.join('\n  ')}`);

  // The refused ones never reached Temporal: NGINX answered them itself.
  const log = proxy.accessLog();
  expect(log).toMatch(/^mtls 400 "-" auth="-" /m);
  expect(log).toMatch(/^mtls 400 "CN=model-canary-worker" auth="-" /m); // the untrusted one: NGINX read it, and refused it
  expect(log).toMatch(/^apikey 403 "-" auth="Bearer not-the-key" /m);
  expect(log).toMatch(/^apikey 403 "-" auth="-" /m);
}, 240_000);

it('API processes refused by the terminator exit 1 at once, saying why, instead of retrying', async () => {
  const [port1, port2] = [await freePort(), await freePort()];
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['api (wrong key)', { TEMPORAL_ADDRESS: proxy.addresses.apikey!, TEMPORAL_TLS_CA: certs.ca, TEMPORAL_API_KEY: 'not-the-key', API_PORT: String(port1) },
      /api: cannot connect to Temporal at 127\.0\.0\.1:\d+ \(TLS, API key\): the server refused the credentials: check TEMPORAL_API_KEY/],
    // The client SDK says only "Failed to connect before the deadline"; the API's own handshake says why.
    ['api (wrong server name)', { ...mtls(), TEMPORAL_TLS_SERVER_NAME: 'wrong.example', API_PORT: String(port2) },
      /api: cannot connect to Temporal .*\(mTLS, server name wrong\.example\): the server's certificate is not valid for TEMPORAL_TLS_SERVER_NAME \(wrong\.example\).*TLS handshake: Hostname\/IP does not match certificate's altnames/],
  ];
  await Promise.all(cases.map(async ([name, settings, expected]) => {
    const api = spawn(name, 'src/api/main.ts', settings);
    const exit = await exited(api, 60_000);
    const output = api.output.join('');
    if (exit?.code !== 1 || !expected.test(output)) throw new Error(`${name}: exit ${JSON.stringify(exit)}, expected ${String(expected)} in:\n${output}`);
    // At the first refusal: it never went into its wait-for-Temporal retries (60 s).
    expect(output).not.toContain('waiting for Temporal');
  }));
}, 90_000);

it('`npm run serve` (scripts/serve.ts) uses the cluster behind the terminator, and refuses TLS settings for its own dev server', async () => {
  const [apiPort, gatewayPort, tPort, uiPort] = await freePorts(4);
  const dataDir = join(dir, 'serve');
  const settings = {
    ...mtls(),
    TASK_QUEUE: uniqueTaskQueue('tls-serve'),
    DATA_DIR: dataDir, API_PORT: String(apiPort), GATEWAY_PORT: String(gatewayPort), GATEWAY_URL: '', API_HOST: '', API_TOKEN: '', TEMPORAL_UI_URL: '',
    LOG_LEVEL: 'warn',
  };
  const serve = spawn('serve (mTLS)', 'scripts/serve.ts', settings);
  await waitForOutput(serve, '[serve] ready', 150_000);
  const out = serve.output.join('');
  expect(out).toMatch(/using the Temporal cluster at 127\.0\.0\.1:\d+ \(namespace default, mTLS\); no dev server started/);
  expect(out).toMatch(/Temporal {5}127\.0\.0\.1:\d+ \(namespace default, task queue tls-serve-[^,]+, mTLS\)/);
  expect((await request(`http://127.0.0.1:${apiPort}`, 'GET', '/healthz')).status).toBe(200);
  await serve.stop(20_000);
  expect(await serve.exit).toEqual({ code: 0, signal: null });

  // No TEMPORAL_ADDRESS: the stack starts a (plaintext) dev server, so TLS settings are a mistake.
  const local = spawn('serve (local, TLS settings)', 'scripts/serve.ts', {
    ...settings, TEMPORAL_ADDRESS: '', TEMPORAL_PORT: String(tPort), TEMPORAL_UI_PORT: String(uiPort),
  });
  const exit = await exited(local, 60_000);
  expect(exit?.code).toBe(1);
  expect(local.output.join('')).toContain("TEMPORAL_TLS_CA, TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY are set but TEMPORAL_ADDRESS is not: the stack's own dev server");
  expect(local.output.join('')).not.toContain('started temporal');
}, 240_000);
