/**
 * TLS for tests: certificates made with openssl, and NGINX as a real TLS terminator in front of a
 * Temporal server (gRPC over HTTP/2: `grpc_pass`), with mTLS and/or an API key check.
 *
 *   const certs = makeCertificates(dir);                 // CA, server (127.0.0.1/localhost), clients
 *   const proxy = await startGrpcTlsProxy({ dir, upstream: env.address, certs, servers: [...] });
 *   ... TEMPORAL_ADDRESS=127.0.0.1:<proxy.ports.mtls> TEMPORAL_TLS_CA=certs.ca ...
 *   await proxy.stop();
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, freePorts } from './http';

export interface Certificates {
  /** The CA that signed the server and the trusted client certificate. */
  ca: string;
  caKey: string;
  /** The server's certificate (SAN: DNS localhost, IP 127.0.0.1) and key. */
  serverCert: string;
  serverKey: string;
  /** A client certificate signed by the CA (CN model-canary-worker). */
  clientCert: string;
  clientKey: string;
  /** A client certificate signed by another CA, which the server does not trust. */
  untrustedCert: string;
  untrustedKey: string;
  untrustedCa: string;
}

function openssl(cwd: string, args: string[]): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A self-signed CA (`name`.pem / `name`.key) with an EC P-256 key. */
function makeCa(dir: string, name: string, subject: string): void {
  openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-sha256', '-days', '2',
    '-subj', subject, '-keyout', `${name}.key`, '-out', `${name}.pem`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
}

/** A leaf certificate `name`.pem / `name`.key signed by `ca`, with the extensions in `ext`. */
function makeLeaf(dir: string, name: string, ca: string, subject: string, ext: string): void {
  openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-sha256', '-subj', subject,
    '-keyout', `${name}.key`, '-out', `${name}.csr`]);
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial',
    '-days', '2', '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.pem`]);
}

/** Makes a CA, a server certificate for 127.0.0.1/localhost, a client certificate, and an untrusted client certificate. */
export function makeCertificates(dir: string): Certificates {
  makeCa(dir, 'ca', '/CN=model-canary test CA');
  makeCa(dir, 'other-ca', '/CN=some other CA');
  makeLeaf(dir, 'server', 'ca', '/CN=localhost', [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth',
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '',
  ].join('\n'));
  const clientExt = ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth', ''].join('\n');
  makeLeaf(dir, 'client', 'ca', '/CN=model-canary-worker', clientExt);
  makeLeaf(dir, 'untrusted', 'other-ca', '/CN=model-canary-worker', clientExt);
  const f = (name: string) => join(dir, name);
  return {
    ca: f('ca.pem'), caKey: f('ca.key'),
    serverCert: f('server.pem'), serverKey: f('server.key'),
    clientCert: f('client.pem'), clientKey: f('client.key'),
    untrustedCert: f('untrusted.pem'), untrustedKey: f('untrusted.key'), untrustedCa: f('other-ca.pem'),
  };
}

/** One TLS listener of the proxy. */
export interface TlsListener {
  name: string;
  /** Require a client certificate signed by the CA (`ssl_verify_client on`). */
  mtls?: boolean;
  /** Require `authorization: Bearer <apiKey>` on every call (refused with 403 otherwise). */
  apiKey?: string;
}

export interface GrpcTlsProxy {
  /** Port of each listener, by name. */
  ports: Record<string, number>;
  /** `127.0.0.1:<port>` of each listener, by name. */
  addresses: Record<string, string>;
  pid: number;
  /** The access log so far: `<listener> <status> <ssl_client_s_dn> auth=<authorization header>` per request. */
  accessLog(): string;
  errorLog(): string;
  stop(): Promise<void>;
}

export const NGINX = process.env.NGINX_BIN || '/usr/sbin/nginx';

/** Whether the NGINX binary is at least `min` (`nginx -v` prints `nginx version: nginx/1.22.1` on stderr). */
function nginxVersionAtLeast(min: [number, number, number]): boolean {
  const out = spawnSync(NGINX, ['-v'], { encoding: 'utf8' });
  const m = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(`${out.stderr}${out.stdout}`);
  if (!m) return false;
  const v = [Number(m[1]), Number(m[2]), Number(m[3])];
  for (let i = 0; i < 3; i++) if (v[i] !== min[i]) return v[i]! > min[i]!;
  return true;
}

/**
 * NGINX (its own process, config/pid/logs/temp files in `dir`) terminating TLS on 127.0.0.1 and
 * passing gRPC on to `upstream` (host:port, plaintext), one listener per entry of `listeners`.
 */
export async function startGrpcTlsProxy(options: { dir: string; upstream: string; certs: Certificates; listeners: TlsListener[] }): Promise<GrpcTlsProxy> {
  const { dir, upstream, certs, listeners } = options;
  const ports = await freePorts(listeners.length);
  // `http2 on;` from NGINX 1.25.1 (where `listen ... http2` is deprecated); before, the listen parameter.
  const http2Directive = nginxVersionAtLeast([1, 25, 1]);
  const servers = listeners.map((l, i) => `
    server {
      listen 127.0.0.1:${ports[i]} ssl${http2Directive ? ';\n      http2 on' : ' http2'};
      server_name localhost;
      ssl_certificate ${certs.serverCert};
      ssl_certificate_key ${certs.serverKey};
      ssl_protocols TLSv1.2 TLSv1.3;
      ${l.mtls ? `ssl_verify_client on;\n      ssl_client_certificate ${certs.ca};\n      ssl_verify_depth 2;` : ''}
      access_log ${join(dir, 'access.log')} grpc;
      location / {
        ${l.apiKey ? `if ($http_authorization != "Bearer ${l.apiKey}") { return 403; }` : ''}
        grpc_pass grpc://${upstream};
        grpc_read_timeout 120s;
        grpc_send_timeout 120s;
      }
    }`).join('\n');
  const conf = `
daemon off;
master_process off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} info;
events { worker_connections 256; }
http {
  client_body_temp_path ${join(dir, 'client_body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  map $server_port $listener {
    ${listeners.map((l, i) => `${ports[i]} ${l.name};`).join('\n    ')}
  }
  log_format grpc '$listener $status "$ssl_client_s_dn" auth="$http_authorization" $request_uri';
  # Long polls (a worker's PollWorkflowTaskQueue waits up to a minute), many calls per connection.
  keepalive_timeout 300s;
  keepalive_requests 100000;
  client_body_timeout 300s;
  client_max_body_size 16m;
  ${servers}
}
`;
  const confPath = join(dir, 'nginx.conf');
  writeFileSync(confPath, conf);
  for (const log of ['access.log', 'error.log']) writeFileSync(join(dir, log), '');
  execFileSync(NGINX, ['-t', '-q', '-p', dir, '-c', confPath, '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  const child: ChildProcess = spawn(NGINX, ['-p', dir, '-c', confPath, '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => { exited = true; resolve(); }));
  await eventually(async () => {
    if (exited) throw new Error(`nginx exited: ${stderr}${readFileSync(join(dir, 'error.log'), 'utf8')}`);
    return existsSync(join(dir, 'nginx.pid')) ? true : undefined;
  }, 10_000, 'nginx to start');
  const read = (name: string) => (existsSync(join(dir, name)) ? readFileSync(join(dir, name), 'utf8') : '');
  return {
    ports: Object.fromEntries(listeners.map((l, i) => [l.name, ports[i]!])),
    addresses: Object.fromEntries(listeners.map((l, i) => [l.name, `127.0.0.1:${ports[i]}`])),
    pid: child.pid!,
    accessLog: () => read('access.log'),
    errorLog: () => read('error.log'),
    async stop() {
      if (exited) return;
      child.kill('SIGQUIT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exit;
      clearTimeout(timer);
    },
  };
}
