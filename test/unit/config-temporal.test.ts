/**
 * The Temporal connection settings (src/config.ts): TEMPORAL_TLS, TEMPORAL_TLS_CA/CERT/KEY/
 * SERVER_NAME, TEMPORAL_API_KEY → the options of `NativeConnection.connect` and
 * `Connection.connect`, and the errors that name the variable; the hints of src/temporal-connect.ts.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from '@temporalio/client';
import type { NativeConnectionOptions } from '@temporalio/worker';
import { describeTemporalSecurity, loadConfig, temporalConnectionOptions } from '../../src/config';
import { connectError, connectErrorHint } from '../../src/temporal-connect';

const dir = mkdtempSync(join(tmpdir(), 'model-canary-config-temporal-'));
const CERT = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const KEY = '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n';
const file = (name: string, content: string) => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};
const ca = file('ca.pem', CERT);
const crt = file('client.pem', CERT);
const key = file('client.key', KEY);
const ecKey = file('ec.key', '-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\n');
const notPem = file('not.pem', 'hello');

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const options = (env: NodeJS.ProcessEnv) => temporalConnectionOptions(loadConfig(env));

describe('temporal connection settings', () => {
  it('defaults to plaintext on 127.0.0.1:TEMPORAL_PORT', () => {
    const config = loadConfig({});
    expect(config.temporalTls).toBeUndefined();
    expect(config.temporalApiKey).toBeUndefined();
    expect(temporalConnectionOptions(config)).toEqual({ address: '127.0.0.1:7233', tls: false });
    expect(options({ TEMPORAL_PORT: '7300' }).address).toBe('127.0.0.1:7300');
    expect(describeTemporalSecurity(config)).toBe('plaintext');
  });

  it('TEMPORAL_TLS=true alone: TLS with the system CAs', () => {
    for (const v of ['true', '1', 'on', 'YES', ' true ']) {
      expect(options({ TEMPORAL_ADDRESS: 'temporal.example:7233', TEMPORAL_TLS: v })).toEqual({ address: 'temporal.example:7233', tls: {} });
    }
    for (const v of ['false', '0', 'off', 'No', '']) expect(options({ TEMPORAL_TLS: v }).tls).toBe(false);
    expect(() => loadConfig({ TEMPORAL_TLS: 'maybe' })).toThrow('TEMPORAL_TLS must be true or false (also 1/0, on/off, yes/no), got "maybe"');
  });

  it('mTLS: CA, client certificate and key read from their files, server name override', () => {
    const config = loadConfig({ TEMPORAL_TLS_CA: ca, TEMPORAL_TLS_CERT: crt, TEMPORAL_TLS_KEY: key, TEMPORAL_TLS_SERVER_NAME: 'temporal.internal' });
    expect(config.temporalTls).toEqual({ caFile: ca, certFile: crt, keyFile: key, serverName: 'temporal.internal' });
    const opts = temporalConnectionOptions(config);
    expect(opts).toEqual({
      address: '127.0.0.1:7233',
      tls: { serverRootCACertificate: Buffer.from(CERT), clientCertPair: { crt: Buffer.from(CERT), key: Buffer.from(KEY) }, serverNameOverride: 'temporal.internal' },
    });
    expect(describeTemporalSecurity(config)).toBe('mTLS, server name temporal.internal');
    // An RSA or EC key in its traditional PEM form is a key too.
    expect(options({ TEMPORAL_TLS_CERT: crt, TEMPORAL_TLS_KEY: ecKey }).tls).toMatchObject({ clientCertPair: { key: expect.any(Buffer) } });
  });

  it('any TEMPORAL_TLS_* variable implies TLS', () => {
    expect(options({ TEMPORAL_TLS_CA: ca }).tls).toEqual({ serverRootCACertificate: Buffer.from(CERT) });
    expect(options({ TEMPORAL_TLS_CERT: crt, TEMPORAL_TLS_KEY: key }).tls).toEqual({ clientCertPair: { crt: Buffer.from(CERT), key: Buffer.from(KEY) } });
    expect(options({ TEMPORAL_TLS_SERVER_NAME: 'localhost' }).tls).toEqual({ serverNameOverride: 'localhost' });
  });

  it('TEMPORAL_TLS=false with a TLS variable is an error naming both', () => {
    expect(() => loadConfig({ TEMPORAL_TLS: 'false', TEMPORAL_TLS_CA: ca })).toThrow('TEMPORAL_TLS is false but TEMPORAL_TLS_CA is set');
    expect(() => loadConfig({ TEMPORAL_TLS: 'off', TEMPORAL_TLS_CERT: crt, TEMPORAL_TLS_KEY: key })).toThrow('TEMPORAL_TLS is false but TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY are set');
  });

  it('a client certificate needs its key, and a key its certificate', () => {
    expect(() => loadConfig({ TEMPORAL_TLS_CERT: crt })).toThrow(/^TEMPORAL_TLS_CERT is set but TEMPORAL_TLS_KEY is not/);
    expect(() => loadConfig({ TEMPORAL_TLS_KEY: key })).toThrow(/^TEMPORAL_TLS_KEY is set but TEMPORAL_TLS_CERT is not/);
  });

  it('a missing, unreadable or non-PEM file is an error naming the variable and the path', () => {
    const missing = join(dir, 'nope.pem');
    expect(() => options({ TEMPORAL_TLS_CA: missing })).toThrow(`TEMPORAL_TLS_CA: cannot read "${missing}" (no such file)`);
    expect(() => options({ TEMPORAL_TLS_CA: dir })).toThrow(`TEMPORAL_TLS_CA: cannot read "${dir}" (a directory)`);
    expect(() => options({ TEMPORAL_TLS_CERT: crt, TEMPORAL_TLS_KEY: missing })).toThrow(`TEMPORAL_TLS_KEY: cannot read "${missing}"`);
    expect(() => options({ TEMPORAL_TLS_CERT: notPem, TEMPORAL_TLS_KEY: key })).toThrow(`TEMPORAL_TLS_CERT: "${notPem}" is not a PEM certificate`);
    // A key given as the certificate and the other way round.
    expect(() => options({ TEMPORAL_TLS_CERT: key, TEMPORAL_TLS_KEY: crt })).toThrow(`TEMPORAL_TLS_CERT: "${key}" is not a PEM certificate`);
    expect(() => options({ TEMPORAL_TLS_CERT: crt, TEMPORAL_TLS_KEY: crt })).toThrow(`TEMPORAL_TLS_KEY: "${crt}" is not a PEM private key`);
    if (process.getuid?.() !== 0) {
      const locked = file('locked.pem', CERT);
      chmodSync(locked, 0o000);
      expect(() => options({ TEMPORAL_TLS_CA: locked })).toThrow(`TEMPORAL_TLS_CA: cannot read "${locked}" (permission denied)`);
    }
    // Settings alone never read files (the gateway loads the same settings and needs none of them).
    expect(() => loadConfig({ TEMPORAL_TLS_CA: missing })).not.toThrow();
  });

  it('TEMPORAL_API_KEY implies TLS, unless TEMPORAL_TLS=false says otherwise', () => {
    expect(options({ TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233', TEMPORAL_API_KEY: 'k1' })).toEqual({ address: 'ns.acct.tmprl.cloud:7233', tls: {}, apiKey: 'k1' });
    expect(options({ TEMPORAL_API_KEY: 'k1', TEMPORAL_TLS_CA: ca })).toEqual({ address: '127.0.0.1:7233', tls: { serverRootCACertificate: Buffer.from(CERT) }, apiKey: 'k1' });
    // Explicitly plaintext: `tls: false` is passed, so that the SDK does not turn TLS on for the key.
    expect(options({ TEMPORAL_API_KEY: 'k1', TEMPORAL_TLS: 'false' })).toEqual({ address: '127.0.0.1:7233', tls: false, apiKey: 'k1' });
    expect(describeTemporalSecurity(loadConfig({ TEMPORAL_API_KEY: 'k1' }))).toBe('TLS, API key');
    expect(describeTemporalSecurity(loadConfig({ TEMPORAL_API_KEY: 'k1', TEMPORAL_TLS: '0' }))).toBe('plaintext, API key');
  });

  it('the options fit both SDK connection types', () => {
    const opts = options({ TEMPORAL_TLS_CA: ca, TEMPORAL_TLS_CERT: crt, TEMPORAL_TLS_KEY: key, TEMPORAL_API_KEY: 'k' });
    const native: NativeConnectionOptions = opts;
    const client: ConnectionOptions = opts;
    expect(native).toBe(client);
  });
});

describe('connection error hints', () => {
  const mtls = loadConfig({ TEMPORAL_ADDRESS: '127.0.0.1:7443', TEMPORAL_TLS_CA: ca, TEMPORAL_TLS_CERT: crt, TEMPORAL_TLS_KEY: key });
  const tlsOnly = loadConfig({ TEMPORAL_ADDRESS: '127.0.0.1:7443', TEMPORAL_TLS_CA: ca });
  const withKey = loadConfig({ TEMPORAL_ADDRESS: '127.0.0.1:7443', TEMPORAL_TLS_CA: ca, TEMPORAL_API_KEY: 'secret-api-key-42' });
  const plain = loadConfig({ TEMPORAL_ADDRESS: '127.0.0.1:7443' });
  // What the worker's NativeConnection reports through NGINX (test/e2e/temporal-tls.test.ts).
  const nginx400 = "Failed to call GetSystemInfo: code: 'Internal error', message: \"protocol error: received message with invalid compression flag: 60 (valid flags are 0 and 1) while receiving response with status: 400 Bad Request\"";
  const nginx403 = nginx400.replace('400 Bad Request', '403 Forbidden');

  it('names the setting to look at', () => {
    expect(connectErrorHint(nginx400, tlsOnly)).toMatch(/requires a client certificate and none was sent: set TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY/);
    expect(connectErrorHint(nginx400, mtls)).toMatch(/refuses a client certificate: is the client certificate TEMPORAL_TLS_CERT \(.*client\.pem\) signed by a CA the server trusts/);
    expect(connectErrorHint(nginx403, withKey)).toMatch(/refused the credentials: check TEMPORAL_API_KEY/);
    expect(connectErrorHint(nginx403, tlsOnly)).toMatch(/does it need an API key \(TEMPORAL_API_KEY\)/);
    expect(connectErrorHint('InvalidCertificate(NotValidForNameContext { expected: DnsName("wrong.example") })', mtls))
      .toMatch(/not valid for the address's host \(127\.0\.0\.1\): set TEMPORAL_TLS_SERVER_NAME/);
    expect(connectErrorHint('InvalidCertificate(UnknownIssuer)', mtls)).toMatch(/not signed by the CA in TEMPORAL_TLS_CA/);
    expect(connectErrorHint('InvalidCertificate(UnknownIssuer)', loadConfig({ TEMPORAL_TLS: '1' }))).toMatch(/set TEMPORAL_TLS_CA/);
    expect(connectErrorHint('received fatal alert: CertificateRequired', tlsOnly)).toMatch(/requires a client certificate/);
    expect(connectErrorHint('received fatal alert: UnknownCA', mtls)).toMatch(/refused the client certificate TEMPORAL_TLS_CERT/);
    expect(connectErrorHint('h2 protocol error: http2 error ... GoAway(b"", FRAME_SIZE_ERROR, Library)', plain)).toMatch(/may expect TLS: set TEMPORAL_TLS=true/);
    expect(connectErrorHint('connection refused', mtls)).toBeUndefined();
  });

  it('wraps the SDK error with the address, the security in use and the hint', () => {
    const err = connectError(new Error(nginx400), tlsOnly);
    expect(err.message).toMatch(/^cannot connect to Temporal at 127\.0\.0\.1:7443 \(TLS\): the TLS endpoint answered HTTP 400, .* SDK error: Failed to call GetSystemInfo/);
    // The client SDK keeps the transport's reason in `cause`.
    const clientErr = Object.assign(new Error('Failed to connect to Temporal server'), { cause: new Error('7 PERMISSION_DENIED: Received HTTP status code 403') });
    expect(connectError(clientErr, withKey).message).toMatch(/\(TLS, API key\): the server refused the credentials: check TEMPORAL_API_KEY.*SDK error: Failed to connect to Temporal server: 7 PERMISSION_DENIED/);
    // No secret in the message.
    expect(connectError(clientErr, withKey).message).not.toContain('secret-api-key-42');
    // A hint that ends in a question mark is not followed by a full stop.
    expect(connectError(new Error(nginx400), mtls).message).toMatch(/trusts\? SDK error: /);
  });
});
