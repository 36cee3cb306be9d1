/**
 * A real Kubernetes API for tests, envtest-style: etcd (Debian etcd-server) and kube-apiserver
 * (built from Go modules by scripts/install-kube.sh into .kube-bin/), with the Gateway API
 * standard-channel CRDs installed. No controllers, no nodes: objects are stored and validated
 * (schemas, CEL rules, RBAC) exactly as by a cluster's API server, and nothing acts on them.
 *
 *   const kube = await startKube();          // beforeAll (allow ~30 s; minutes when it builds)
 *   ... kube.kubeconfigPath, kube.request('GET', '/api/v1/namespaces') ...
 *   await kube.stop();                       // afterAll (also done when the process exits)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { freePorts } from './http';

const ROOT = resolve(__dirname, '../..');
export const KUBE_BIN_DIR = process.env.KUBE_BIN_DIR || join(ROOT, '.kube-bin');
const APISERVER = join(KUBE_BIN_DIR, 'kube-apiserver');
const CRD_DIR = join(KUBE_BIN_DIR, 'crds');

export interface KubeResponse<T = any> {
  status: number;
  body: T;
}

export interface KubeCluster {
  /** A kubeconfig file (token auth as a cluster admin, the apiserver's CA). */
  kubeconfigPath: string;
  /** https://127.0.0.1:<port> */
  server: string;
  /** The admin's bearer token (group system:masters). */
  token: string;
  /** The apiserver's serving CA (PEM). */
  caPem: string;
  /** A call to the API (JSON), as the admin unless `token` is given; never throws on a status. */
  request<T = any>(method: string, path: string, body?: unknown, options?: { token?: string; contentType?: string }): Promise<KubeResponse<T>>;
  /** A kubeconfig file for another bearer token (e.g. a ServiceAccount's) on this cluster. */
  writeKubeconfig(name: string, token: string): string;
  /**
   * A ServiceAccount in `namespace` allowed exactly `rules` there (a Role and RoleBinding), and
   * a token for it (TokenRequest) with its kubeconfig.
   */
  serviceAccount(name: string, namespace: string, rules: PolicyRule[]): Promise<{ token: string; kubeconfigPath: string }>;
  /** Milliseconds from spawning etcd to the CRDs being served. */
  startupMs: number;
  stop(): Promise<void>;
}

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** The binaries and CRDs, installed by the project's scripts when missing (never skipped). */
export function ensureKubeInstalled(): void {
  if (!onPath('etcd')) run('bash', [join(ROOT, 'scripts/install-debian.sh')]);
  // Idempotent and pinned: a no-op (well under a second) when everything is in place.
  run('bash', [join(ROOT, 'scripts/install-kube.sh')]);
}

export async function startKube(): Promise<KubeCluster> {
  if (!existsSync(APISERVER) || !existsSync(CRD_DIR) || !onPath('etcd')) ensureKubeInstalled();
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'kube-'));
  const children: ChildProcess[] = [];
  const killAll = () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  // Also when the test process ends without afterAll (a crash, Ctrl-C): no orphan servers.
  process.once('exit', killAll);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', killAll);
    // The apiserver first (its data is thrown away: no graceful shutdown needed), then etcd.
    for (const child of [...children].reverse()) await terminate(child, child === children[0] ? 'SIGTERM' : 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const [etcdClient, etcdPeer, securePort] = (await freePorts(3)) as [number, number, number];
    const etcd = spawnLogged(
      'etcd',
      [
        '--name=default',
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
        `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
        '--log-level=warn',
      ],
      join(dir, 'etcd.log'),
    );
    children.push(etcd);

    const token = randomBytes(24).toString('hex');
    writeFileSync(join(dir, 'tokens.csv'), `${token},admin,admin-uid,"system:masters"\n`, { mode: 0o600 });
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(join(dir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    writeFileSync(join(dir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    const certDir = join(dir, 'certs');

    await waitFor(() => httpOk(`http://127.0.0.1:${etcdClient}/health`), 30_000, 'etcd', etcd, join(dir, 'etcd.log'));

    const apiserver = spawnLogged(
      APISERVER,
      [
        `--etcd-servers=http://127.0.0.1:${etcdClient}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${securePort}`,
        `--cert-dir=${certDir}`,
        `--token-auth-file=${join(dir, 'tokens.csv')}`,
        '--authorization-mode=RBAC',
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-key-file=${join(dir, 'sa.pub')}`,
        `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        '--disable-admission-plugins=ServiceAccount',
        '--allow-privileged=true',
        '--v=0',
      ],
      join(dir, 'apiserver.log'),
    );
    children.push(apiserver);

    const server = `https://127.0.0.1:${securePort}`;
    // The serving certificate the apiserver made itself; the file ends with the CA that signed it.
    await waitFor(async () => existsSync(join(certDir, 'apiserver.crt')), 60_000, 'the apiserver certificate', apiserver, join(dir, 'apiserver.log'));
    const caPem = lastCertificate(readFileSync(join(certDir, 'apiserver.crt'), 'utf8'));
    const call = <T = any>(method: string, path: string, body?: unknown, options: { token?: string; contentType?: string } = {}) =>
      kubeRequest<T>(server, caPem, options.token ?? token, method, path, body, options.contentType);

    await waitFor(async () => (await call('GET', '/readyz')).status === 200, 90_000, 'the apiserver (/readyz)', apiserver, join(dir, 'apiserver.log'));
    await waitFor(async () => (await call('GET', '/api/v1/namespaces/default')).status === 200, 30_000, 'the default namespace', apiserver, join(dir, 'apiserver.log'));
    await installCrds(call);

    const writeKubeconfig = (name: string, bearer: string): string => {
      const path = join(dir, `${name}.kubeconfig`);
      writeFileSync(path, kubeconfigFor(server, caPem, name, bearer), { mode: 0o600 });
      return path;
    };
    const kubeconfigPath = writeKubeconfig('admin', token);

    return {
      kubeconfigPath,
      server,
      token,
      caPem,
      request: call,
      writeKubeconfig,
      serviceAccount: async (name, namespace, rules) => {
        const created = async (path: string, object: unknown) => {
          const res = await call('POST', path, object);
          if (res.status !== 201 && res.status !== 409) throw new Error(`POST ${path}: ${res.status} ${JSON.stringify(res.body)}`);
        };
        await created(`/api/v1/namespaces/${namespace}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name } });
        await created(`/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/roles`, {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'Role',
          metadata: { name },
          rules,
        });
        await created(`/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/rolebindings`, {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'RoleBinding',
          metadata: { name },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
          subjects: [{ kind: 'ServiceAccount', name, namespace }],
        });
        const res = await call('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: { expirationSeconds: 3600 },
        });
        if (res.status !== 201) throw new Error(`TokenRequest for ${namespace}/${name}: ${res.status} ${JSON.stringify(res.body)}`);
        const saToken = (res.body as { status: { token: string } }).status.token;
        return { token: saToken, kubeconfigPath: writeKubeconfig(`sa-${namespace}-${name}`, saToken) };
      },
      startupMs: Date.now() - started,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Creates every object of the CRD files, then waits until each CRD is Established and served. */
async function installCrds(call: KubeCluster['request']): Promise<void> {
  const files = readdirSync(CRD_DIR).filter((f) => f.endsWith('.yaml')).sort();
  if (files.length === 0) throw new Error(`no CRD files in ${CRD_DIR}: run scripts/install-kube.sh`);
  const crds: Array<{ name: string; group: string; version: string; plural: string }> = [];
  const objects: Array<{ file: string; object: { apiVersion?: string; kind: string; metadata?: { name?: string }; spec?: any } }> = [];
  for (const file of files) {
    for (const doc of parseAllDocuments(readFileSync(join(CRD_DIR, file), 'utf8'))) {
      const object = doc.toJS() as { apiVersion?: string; kind?: string; metadata?: { name?: string }; spec?: any } | null;
      if (object?.kind) objects.push({ file, object: object as (typeof objects)[number]['object'] });
    }
  }
  // All at once: the apiserver compiles each CRD's schema and CEL rules, one core each.
  await Promise.all(
    objects.map(async ({ file, object }) => {
      const res = await call('POST', collectionPath(object.apiVersion ?? '', object.kind), object);
      if (res.status !== 201 && res.status !== 409) throw new Error(`creating ${object.kind} ${object.metadata?.name} from ${file}: ${res.status} ${JSON.stringify(res.body).slice(0, 500)}`);
    }),
  );
  for (const { object } of objects) {
    if (object.kind !== 'CustomResourceDefinition') continue;
    const versions = object.spec.versions as Array<{ name: string; storage: boolean }>;
    const stored = versions.find((v) => v.storage) ?? versions[0]!;
    crds.push({ name: object.metadata!.name!, group: object.spec.group, version: stored.name, plural: object.spec.names.plural });
  }
  await Promise.all(
    crds.map((crd) =>
      waitFor(async () => {
        const res = await call('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.name}`);
        const conditions = (res.body?.status?.conditions ?? []) as Array<{ type: string; status: string }>;
        return conditions.some((c) => c.type === 'Established' && c.status === 'True');
      }, 30_000, `CRD ${crd.name} Established`),
    ),
  );
  // Established, and the collection answers (discovery may lag a moment behind).
  await Promise.all(
    crds.map((crd) => waitFor(async () => (await call('GET', `/apis/${crd.group}/${crd.version}/${crd.plural}`)).status === 200, 30_000, `${crd.plural}.${crd.group} served`)),
  );
}

const COLLECTIONS: Record<string, string> = {
  CustomResourceDefinition: 'customresourcedefinitions',
  ValidatingAdmissionPolicy: 'validatingadmissionpolicies',
  ValidatingAdmissionPolicyBinding: 'validatingadmissionpolicybindings',
};

function collectionPath(apiVersion: string, kind: string): string {
  const plural = COLLECTIONS[kind];
  if (!plural) throw new Error(`the CRD files hold a ${kind}: add its collection to COLLECTIONS in test/helpers/kube.ts`);
  return `${apiVersion === 'v1' ? '/api' : '/apis'}/${apiVersion}/${plural}`;
}

export function kubeconfigFor(server: string, caPem: string, user: string, token: string): string {
  const ca = Buffer.from(caPem).toString('base64');
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'test', cluster: { server, 'certificate-authority-data': ca } }],
      users: [{ name: user, user: { token } }],
      contexts: [{ name: user, context: { cluster: 'test', user, namespace: 'default' } }],
      'current-context': user,
    },
    null,
    2,
  );
}

function kubeRequest<T>(server: string, ca: string, token: string, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<KubeResponse<T>> {
  return new Promise((resolvePromise, reject) => {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = httpsRequest(
      `${server}${path}`,
      {
        method,
        ca,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(payload === undefined ? {} : { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) }),
        },
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            // not JSON (e.g. /readyz's "ok")
          }
          resolvePromise({ status: res.statusCode ?? 0, body: parsed as T });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

function lastCertificate(pem: string): string {
  const certs = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (certs.length === 0) throw new Error('the apiserver wrote no certificate');
  return `${certs[certs.length - 1]}\n`;
}

function spawnLogged(command: string, args: string[], logPath: string): ChildProcess {
  writeFileSync(logPath, '');
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const append = (chunk: Buffer) => {
    try {
      writeFileSync(logPath, chunk, { flag: 'a' });
    } catch {
      // the temp dir is gone (stopped)
    }
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  child.on('error', (err) => append(Buffer.from(`spawn ${command}: ${err.message}\n`)));
  return child;
}

async function terminate(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string, child?: ChildProcess, logPath?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(`${what}: the process exited (${child.exitCode ?? child.signalCode})${logTail(logPath)}`);
    }
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}${logTail(logPath)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function logTail(path?: string): string {
  if (!path) return '';
  try {
    return `\n--- ${path} (end) ---\n${readFileSync(path, 'utf8').split('\n').slice(-30).join('\n')}`;
  } catch {
    return '';
  }
}

async function httpOk(url: string): Promise<boolean> {
  try {
    return (await fetch(url)).ok;
  } catch {
    return false;
  }
}

function onPath(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, PATH: `${process.env.PATH}:/usr/local/go/bin` } });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.status ?? result.signal})`);
}
