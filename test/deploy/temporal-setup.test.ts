/**
 * deploy/temporal-setup.sh (docker-compose.yml's one-shot `temporal-setup`) against a real
 * Temporal server: the project's `temporal` CLI dev server, started bare (no namespace of ours,
 * no search attributes). The script creates the namespace, registers the search attributes the
 * workflow uses, is idempotent, refuses an attribute registered with another type, and gives up
 * (non-zero, saying so) when Temporal does not answer.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, resolve } from 'node:path';
import { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { requireTemporalBinary } from '../../src/temporal-bin';
import { SEARCH_ATTRIBUTE_REGISTRATIONS } from '../../src/workflows/search-attributes';

const SCRIPT = resolve(__dirname, '../../deploy/temporal-setup.sh');
const NAMESPACE = 'canary-setup-test';
const ATTRIBUTES = Object.entries(SEARCH_ATTRIBUTE_REGISTRATIONS)
  .map(([name, type]) => `${name}=${type}`)
  .join(' ');

let env: TestWorkflowEnvironment;
let cliDir: string;

beforeAll(async () => {
  const cli = requireTemporalBinary('temporal');
  cliDir = dirname(cli);
  env = await TestWorkflowEnvironment.createLocal({ server: { executable: { type: 'existing-path', path: cli }, ip: '127.0.0.1' } });
}, 120_000);

afterAll(async () => {
  await env?.teardown();
});

function runSetup(vars: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn('bash', [SCRIPT], {
      env: { PATH: `${cliDir}:${process.env.PATH ?? ''}`, HOME: process.env.HOME ?? '/tmp', ...vars },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolveRun({ code, output }));
  });
}

async function customAttributes(): Promise<Record<string, string>> {
  const { customAttributes } = await env.connection.operatorService.listSearchAttributes({ namespace: NAMESPACE });
  const types = temporal.api.enums.v1.IndexedValueType;
  return Object.fromEntries(
    Object.entries(customAttributes ?? {}).map(([name, type]) => [name, String(types[type as number]).replace('INDEXED_VALUE_TYPE_', '')]),
  );
}

test('creates the namespace and registers the search attributes, then changes nothing', async () => {
  const vars = { TEMPORAL_ADDRESS: env.address, TEMPORAL_NAMESPACE: NAMESPACE, TEMPORAL_NAMESPACE_RETENTION: '72h', SEARCH_ATTRIBUTES: ATTRIBUTES };
  const first = await runSetup(vars);
  expect(first.output).toContain(`creating namespace ${NAMESPACE}`);
  expect(first.code).toBe(0);
  const described = await env.connection.workflowService.describeNamespace({ namespace: NAMESPACE });
  expect(Number(described.config?.workflowExecutionRetentionTtl?.seconds)).toBe(72 * 3600);
  const registered = await customAttributes();
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTE_REGISTRATIONS)) expect([name, registered[name]]).toEqual([name, type.toUpperCase()]);

  const second = await runSetup(vars);
  expect(second.code).toBe(0);
  expect(second.output).toContain(`namespace ${NAMESPACE} exists`);
  expect(second.output).not.toContain('registering');
  expect(await customAttributes()).toEqual(registered);
}, 60_000);

test('an attribute registered with another type is an error that says so', async () => {
  const name = Object.keys(SEARCH_ATTRIBUTE_REGISTRATIONS)[0]!;
  const result = await runSetup({ TEMPORAL_ADDRESS: env.address, TEMPORAL_NAMESPACE: NAMESPACE, SEARCH_ATTRIBUTES: `${name}=Double` });
  expect(result.code).toBe(1);
  expect(result.output).toMatch(new RegExp(`search attribute ${name} exists with type \\w+, not Double`));
}, 60_000);

test('gives up, saying why, when Temporal does not answer', async () => {
  const port = await freePort();
  const result = await runSetup({ TEMPORAL_ADDRESS: `127.0.0.1:${port}`, SEARCH_ATTRIBUTES: ATTRIBUTES, SETUP_TIMEOUT_SECONDS: '3' });
  expect(result.code).not.toBe(0);
  expect(result.output).toContain(`gave up: Temporal at 127.0.0.1:${port} to answer SERVING`);
}, 60_000);

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}
