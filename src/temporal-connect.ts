/**
 * Why a connection to Temporal failed, in words that name the setting to look at. The SDK's own
 * errors are transport-level ("invalid compression flag: 60 ... status: 400 Bad Request" is what a
 * TLS terminator's refusal of a client certificate looks like to a gRPC client); the worker and
 * the API wrap them with this before they exit.
 */
import { isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { describeTemporalSecurity, temporalConnectionOptions, type Config } from './config';

type Settings = Pick<Config, 'temporalAddress' | 'temporalTls' | 'temporalApiKey'>;

/** A hint for the SDK error `message`, or undefined when it has none. */
export function connectErrorHint(message: string, config: Settings): string | undefined {
  const tls = config.temporalTls;
  const cert = tls?.certFile ? `the client certificate TEMPORAL_TLS_CERT (${tls.certFile})` : undefined;
  const noCert = 'set TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY (mTLS)';
  if (/status: 40[13]|HTTP status code 40[13]|PERMISSION_DENIED|UNAUTHENTICATED|Unauthenticated|PermissionDenied|Request unauthorized/i.test(message)) {
    return config.temporalApiKey
      ? 'the server refused the credentials: check TEMPORAL_API_KEY (and the namespace it is for, TEMPORAL_NAMESPACE)'
      : 'the server refused the request: does it need an API key (TEMPORAL_API_KEY) or a client certificate (TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY)?';
  }
  if (tls) {
    if (/NotValidForName|does not match certificate's altnames/i.test(message)) {
      const name = tls.serverName ? `TEMPORAL_TLS_SERVER_NAME (${tls.serverName})` : `the address's host (${hostOf(config.temporalAddress)})`;
      return `the server's certificate is not valid for ${name}: set TEMPORAL_TLS_SERVER_NAME to a name the certificate holds`;
    }
    if (/UnknownIssuer|unable to get (local )?issuer|unable to verify the first certificate|self[- ]signed/i.test(message)) {
      return tls.caFile
        ? `the server's certificate is not signed by the CA in TEMPORAL_TLS_CA (${tls.caFile})`
        : "the server's certificate is not signed by a CA this system trusts: set TEMPORAL_TLS_CA to its CA's PEM file";
    }
    if (/CertificateRequired|certificate required/i.test(message)) {
      return `the server requires a client certificate: ${noCert}`;
    }
    if (/BadCertificate|UnknownCA|unknown ca|bad certificate|CertificateUnknown/i.test(message)) {
      return `the server refused ${cert ?? 'the client certificate'}: is it signed by a CA the server trusts (and is TEMPORAL_TLS_KEY its key)?`;
    }
    // NGINX (ssl_verify_client on) answers a missing or untrusted client certificate with HTTP 400.
    if (/status: 400 Bad Request|HTTP status code 400/i.test(message)) {
      return cert
        ? `the TLS endpoint answered HTTP 400, as NGINX does when it refuses a client certificate: is ${cert} signed by a CA the server trusts?`
        : `the TLS endpoint answered HTTP 400, as NGINX does when it requires a client certificate and none was sent: ${noCert}`;
    }
    if (/InvalidContentType|corrupt message|wrong version number|packet length too long/i.test(message)) {
      return 'the server does not seem to speak TLS: unset TEMPORAL_TLS (and TEMPORAL_TLS_*, or set TEMPORAL_TLS=false)';
    }
  } else if (/FRAME_SIZE_ERROR|GoAway|h2 protocol error|invalid compression flag|Canceled, "connection closed"/i.test(message)) {
    // The last: a TLS endpoint closing the connection on the plaintext HTTP/2 preface (seen with NGINX).
    return 'the server may expect TLS: set TEMPORAL_TLS=true (and TEMPORAL_TLS_CA if its CA is not one this system trusts)';
  }
  return undefined;
}

/** `err` as an Error that says where we connected, how, and (when it can tell) what to fix. */
export function connectError(err: unknown, config: Settings): Error {
  const message = errorText(err);
  const hint = connectErrorHint(message, config);
  const error = new Error(
    `cannot connect to Temporal at ${config.temporalAddress} (${describeTemporalSecurity(config)}): ${hint ? `${hint}${/[.?]$/.test(hint) ? '' : '.'} ` : ''}SDK error: ${message}`,
  );
  (error as Error & { cause?: unknown }).cause = err;
  return error;
}

/** The message of `err` and of its causes (the client SDK keeps the transport's reason in `cause`). */
function errorText(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 4; depth++) {
    const m = e instanceof Error ? e.message : String(e);
    if (m && !parts.includes(m)) parts.push(m);
    e = e instanceof Error ? (e as Error & { cause?: unknown }).cause : undefined;
  }
  return parts.join(': ');
}

function hostOf(address: string): string {
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(address) ?? /^([^:]+)(?::\d+)?$/.exec(address);
  return m?.[1] ?? address;
}

/**
 * The client SDK (grpc-js) reports a failed TLS handshake only as "Failed to connect before the
 * deadline". This handshake of our own, with the same settings, tells why: the error's message
 * (e.g. the server's certificate is not valid for the name), or undefined when it succeeds.
 */
export async function probeTls(config: Settings, timeoutMs = 3_000): Promise<string | undefined> {
  const options = temporalConnectionOptions(config);
  if (!options.tls) return undefined;
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(options.address) ?? /^([^:]+):(\d+)$/.exec(options.address);
  if (!m) return undefined;
  const [host, port] = [m[1]!, Number(m[2])];
  const { serverRootCACertificate, clientCertPair, serverNameOverride } = options.tls;
  const servername = serverNameOverride ?? (isIP(host) ? undefined : host);
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host, port, ALPNProtocols: ['h2'],
      ...(servername ? { servername } : {}),
      ...(serverRootCACertificate ? { ca: serverRootCACertificate } : {}),
      ...(clientCertPair ? { cert: clientCertPair.crt, key: clientCertPair.key } : {}),
    });
    const done = (result: string | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.once('secureConnect', () => done(undefined));
    socket.once('error', (err: NodeJS.ErrnoException) => done(`TLS handshake: ${err.message}${err.code ? ` (${err.code})` : ''}`));
  });
}
