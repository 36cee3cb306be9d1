/**
 * The API as main.ts serves it (createApp behind createApiServer) on 127.0.0.1:0, a request
 * helper that sends bytes as they are, and the check of the one error envelope. Every response
 * of an API served here is checked against the OpenAPI document (see checkedAgainstDocument).
 */
import { createApp, type AppOptions } from '../../src/api/app';
import { openApiDocument } from '../../src/api/openapi';
import { listenApi, type ApiServer } from '../../src/api/server';
import type { ErrorBody } from '../../src/api/errors';
import type { RequestListener, ServerOptions, ServerResponse } from 'node:http';
import { contractOf, type Contract } from './openapi-contract';

export function serveApi(options: AppOptions, serverOptions: ServerOptions = {}): Promise<ApiServer> {
  return listenApi(checkedAgainstDocument(createApp(options)), serverOptions);
}

// ---- every response against the OpenAPI document ----

/**
 * What the responses of this test file's APIs got wrong against GET /v1/openapi.json's document:
 * each one `METHOD url → status: problem`. Checked after the file's tests (below); the test file
 * fails listing them. `API_CONTRACT_CHECK=0` turns the check off.
 */
export const contractViolations: string[] = [];
/** Larger bodies are not checked (none of the API's is, by far). */
const MAX_CHECKED_BODY = 4 * 1024 * 1024;
let contract: Contract | undefined;

afterAll(() => {
  if (contractViolations.length === 0) return;
  const listed = contractViolations.slice(0, 20).join('\n');
  const more = contractViolations.length > 20 ? `\n... and ${contractViolations.length - 20} more` : '';
  throw new Error(`${contractViolations.length} API response(s) do not match the OpenAPI document (src/api/openapi.ts, src/api/schemas.ts):\n${listed}${more}`);
});

/**
 * `app`, with each response (status, content type, JSON body) checked against the operation the
 * document has for its request, and, for a success, the request too (the document must not be
 * stricter than the API). Costs a JSON.parse and an Ajv validation per response; the validators
 * are compiled once per test file, on first use.
 */
export function checkedAgainstDocument(app: RequestListener): RequestListener {
  if (process.env.API_CONTRACT_CHECK === '0') return app;
  return (req, res) => {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    // HEAD and OPTIONS are HTTP's (Express answers them for every route), not operations.
    if (method === 'HEAD' || method === 'OPTIONS') return app(req, res);
    const chunks: Buffer[] = [];
    let size = 0;
    const capture = (chunk: unknown, encoding: unknown) => {
      if ((typeof chunk !== 'string' && !(chunk instanceof Uint8Array)) || size > MAX_CHECKED_BODY) return;
      const buffer = typeof chunk === 'string' ? Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8') : Buffer.from(chunk);
      size += buffer.length;
      chunks.push(buffer);
    };
    const { write, end } = res;
    res.write = function (this: ServerResponse, ...args: unknown[]) {
      capture(args[0], args[1]);
      return (write as (...a: unknown[]) => boolean).apply(this, args);
    } as ServerResponse['write'];
    res.end = function (this: ServerResponse, ...args: unknown[]) {
      capture(args[0], args[1]);
      return (end as (...a: unknown[]) => ServerResponse).apply(this, args);
    } as ServerResponse['end'];
    res.on('finish', () => {
      if (size > MAX_CHECKED_BODY) return;
      const text = Buffer.concat(chunks).toString('utf8');
      const contentType = res.getHeader('content-type')?.toString();
      const requestBody = (req as { body?: unknown }).body;
      try {
        contract ??= contractOf(openApiDocument());
        let body: unknown;
        try {
          body = text === '' ? undefined : JSON.parse(text);
        } catch {
          body = text;
        }
        const problems = contract.checkResponse(method, url, res.statusCode, contentType, body);
        if (res.statusCode < 300) problems.push(...contract.checkRequest(method, url, requestBody).map((p) => `(request) ${p}`));
        for (const problem of problems) contractViolations.push(`${method} ${url.slice(0, 200)} → ${res.statusCode}: ${problem}`);
      } catch (err) {
        contractViolations.push(`${method} ${url.slice(0, 200)} → ${res.statusCode}: could not be checked: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
    app(req, res);
  };
}

export interface Reply {
  status: number;
  contentType: string | undefined;
  text: string;
  /** The parsed body; undefined when it is not JSON. */
  json: any;
}

/** fetch without re-encoding: strings and buffers are sent as given, with exactly these headers. */
export async function send(
  base: string,
  method: string,
  path: string,
  { body, headers = {} }: { body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const res = await fetch(`${base}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: the envelope check says so
  }
  return { status: res.status, contentType: res.headers.get('content-type') ?? undefined, text, json };
}

/** Asserts the error envelope `{"error": {"code", "message", "issues"?}}` and returns it. */
export function expectEnvelope(reply: Pick<Reply, 'contentType' | 'json' | 'text'>): ErrorBody['error'] {
  expect(reply.contentType).toMatch(/^application\/json/);
  const error = (reply.json as ErrorBody | undefined)?.error;
  if (!error || typeof error.code !== 'string' || typeof error.message !== 'string' || error.message === '') {
    throw new Error(`not the error envelope: ${reply.text.slice(0, 500)}`);
  }
  if (error.issues !== undefined) {
    expect(error.issues.length).toBeGreaterThan(0);
    for (const issue of error.issues) {
      expect(issue).toEqual({ path: expect.any(String), message: expect.any(String) });
      expect(issue.path).not.toBe('');
    }
  }
  return error;
}

/** The paths of the envelope's issues (empty when it has none). */
export function issuePaths(reply: Pick<Reply, 'json'>): string[] {
  return ((reply.json as ErrorBody | undefined)?.error.issues ?? []).map((i) => i.path);
}
