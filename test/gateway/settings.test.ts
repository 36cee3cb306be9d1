/**
 * The gateway's settings from the environment (src/config.ts `loadConfig().gateway`, read by
 * src/gateway/main.ts): defaults, the existing names, and a clear error naming a bad variable.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { rawRequest } from '../helpers/raw-http';

const ROOT = path.resolve(__dirname, '../..');

describe('loadConfig().gateway', () => {
  it('has the documented defaults', () => {
    expect(loadConfig({}).gateway).toEqual({
      port: 8080,
      host: '127.0.0.1',
      upstreamTimeoutMs: 60_000,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 300_000,
      bodyIdleTimeoutMs: 15_000,
      upstreamConnections: 256,
      upstreamMaxPending: 256,
      upstreamMaxUploads: 64,
      metricsRetentionMs: 60_000,
      bodyCopyBytes: 1024 * 1024,
      mirrorMaxInFlight: 64,
      evaluatorMaxInFlight: 8,
      evaluatorTimeoutMs: 10_000,
    });
  });

  it('reads every variable', () => {
    const settings = loadConfig({
      GATEWAY_PORT: '0',
      GATEWAY_HOST: '::1',
      GATEWAY_UPSTREAM_TIMEOUT_MS: '1000',
      GATEWAY_HEADERS_TIMEOUT_MS: '2000',
      GATEWAY_REQUEST_TIMEOUT_MS: '0',
      GATEWAY_BODY_IDLE_TIMEOUT_MS: '300',
      GATEWAY_UPSTREAM_CONNECTIONS: '8',
      GATEWAY_UPSTREAM_MAX_PENDING: '0',
      GATEWAY_UPSTREAM_MAX_UPLOADS: '2',
      GATEWAY_METRICS_RETENTION_MS: '0',
      GATEWAY_BODY_COPY_BYTES: '0',
      GATEWAY_MIRROR_MAX_IN_FLIGHT: '4',
      GATEWAY_EVALUATOR_MAX_IN_FLIGHT: '2',
      GATEWAY_EVALUATOR_TIMEOUT_MS: '500',
    }).gateway;
    expect(settings).toEqual({
      port: 0,
      host: '::1',
      upstreamTimeoutMs: 1000,
      headersTimeoutMs: 2000,
      requestTimeoutMs: 0,
      bodyIdleTimeoutMs: 300,
      upstreamConnections: 8,
      upstreamMaxPending: 0,
      upstreamMaxUploads: 2,
      metricsRetentionMs: 0,
      bodyCopyBytes: 0,
      mirrorMaxInFlight: 4,
      evaluatorMaxInFlight: 2,
      evaluatorTimeoutMs: 500,
    });
  });

  it.each([
    ['GATEWAY_BODY_IDLE_TIMEOUT_MS', 'abc'],
    ['GATEWAY_HEADERS_TIMEOUT_MS', '0'],
    ['GATEWAY_REQUEST_TIMEOUT_MS', '-5'],
    ['GATEWAY_UPSTREAM_CONNECTIONS', '0'],
    ['GATEWAY_UPSTREAM_MAX_PENDING', '1.5'],
    ['GATEWAY_UPSTREAM_MAX_UPLOADS', '0'],
    ['GATEWAY_METRICS_RETENTION_MS', '99999999999'], // beyond what a timer takes
    ['GATEWAY_UPSTREAM_TIMEOUT_MS', '1e3'],
    ['GATEWAY_MIRROR_MAX_IN_FLIGHT', '0'],
    ['GATEWAY_EVALUATOR_TIMEOUT_MS', '0'],
  ])('refuses %s=%s, naming it', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^${name} must be an integer from \\d+ to \\d+, got "${value.replace('.', '\\.')}"$`));
  });

  it('refuses a headers timeout longer than the request timeout, naming both', () => {
    expect(() => loadConfig({ GATEWAY_HEADERS_TIMEOUT_MS: '5000', GATEWAY_REQUEST_TIMEOUT_MS: '1000' })).toThrow(
      /GATEWAY_HEADERS_TIMEOUT_MS \(5000\) must not exceed GATEWAY_REQUEST_TIMEOUT_MS \(1000\)/,
    );
  });
});

describe('src/gateway/main.ts', () => {
  let dataDir: string;
  const children = new Set<ReturnType<typeof spawn>>();

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'gateway-settings-'));
  });

  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  });

  function run(env: Record<string, string>) {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/gateway/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, GATEWAY_PORT: '0', DATA_DIR: dataDir, LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let out = '';
    let err = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => {
        children.delete(child);
        resolve(code);
      }),
    );
    return { child, exited, output: () => ({ out, err }) };
  }

  it('stops with an error naming an invalid variable', async () => {
    const { exited, output } = run({ GATEWAY_UPSTREAM_MAX_PENDING: 'lots' });
    expect(await exited).toBe(1);
    expect(output().err).toContain('GATEWAY_UPSTREAM_MAX_PENDING must be an integer from 0 to 1000000, got "lots"');
  }, 30_000);

  it('applies the limits it reads: a request whose headers stall gets a 408 after GATEWAY_HEADERS_TIMEOUT_MS', async () => {
    const { child, exited, output } = run({ GATEWAY_HEADERS_TIMEOUT_MS: '300', GATEWAY_REQUEST_TIMEOUT_MS: '2000' });
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not listening in 30 s: ${JSON.stringify(output())}`)), 30_000);
      child.stdout!.on('data', () => {
        const line = output().out.split('\n').find((l) => l.includes('"gateway listening"'));
        if (line) {
          clearTimeout(timer);
          resolve((JSON.parse(line) as { port: number }).port);
        }
      });
    });
    const reply = await rawRequest(port, 'GET /healthz HTTP/1.1\r\nHost: gw\r\n', 10_000);
    expect(reply.status).toBe(408);
    expect(reply.elapsedMs).toBeLessThan(2_000);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 40_000);
});
