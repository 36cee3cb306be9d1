/**
 * Requests and responses checked against the OpenAPI document (src/api/openapi.ts): an Ajv
 * (JSON Schema 2020-12) validator over the document's own schemas, and the matching of a raw
 * request (method, URL) to the document's operation. Used by test/api/openapi.test.ts and, for
 * every response of the API tests, by the hook in support.ts.
 */
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { OpenApiDocument, JsonSchema } from '../../src/api/openapi';

const DOC_ID = 'https://model-canary.invalid/openapi.json';
/** The document's own keywords: known to Ajv, not validated (only the schemas inside are). */
const OPENAPI_KEYWORDS = ['openapi', 'info', 'jsonSchemaDialect', 'servers', 'paths', 'components', 'security', 'tags', 'webhooks', 'externalDocs'];
const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

export interface Operation {
  method: string;
  /** The path as the document writes it, `/v1/rollouts/{id}`. */
  template: string;
  pointer: string;
  spec: JsonSchema & { parameters?: JsonSchema[]; requestBody?: JsonSchema; responses: Record<string, JsonSchema> };
  pathParams: Record<string, string>;
}

export interface Contract {
  document: OpenApiDocument;
  /** The operation a request goes to, or undefined when the document has none. */
  operation(method: string, url: string): Operation | undefined;
  /** What is wrong with a request (method, URL with query, parsed JSON body) as the document sees it; empty when nothing. */
  checkRequest(method: string, url: string, body: unknown): string[];
  /** What is wrong with a response to the request (status, content type, parsed JSON body); empty when nothing. */
  checkResponse(method: string, url: string, status: number, contentType: string | undefined, body: unknown): string[];
  /** The validator of a schema in the document (a JSON pointer such as `/components/schemas/Error`). */
  validator(pointer: string): ValidateFunction;
}

export function contractOf(document: OpenApiDocument): Contract {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  ajv.addVocabulary(OPENAPI_KEYWORDS);
  ajv.addSchema({ ...document, $id: DOC_ID });
  const validators = new Map<string, ValidateFunction>();
  const validator = (at: string): ValidateFunction => {
    // Most responses are one `$ref` (the error envelope): compile what it points to, once.
    let pointer = at;
    for (let node = resolve(document, pointer); isBareRef(node); node = resolve(document, pointer)) pointer = (node.$ref as string).slice(1);
    let validate = validators.get(pointer);
    if (!validate) {
      validate = ajv.getSchema(`${DOC_ID}#${pointer}`);
      if (!validate) throw new Error(`no schema at ${pointer} in the OpenAPI document`);
      validators.set(pointer, validate);
    }
    return validate;
  };
  const check = (pointer: string, value: unknown, what: string): string[] => {
    const validate = validator(pointer);
    if (validate(value)) return [];
    return [`${what} does not match ${pointer}: ${ajv.errorsText(validate.errors, { dataVar: what })}`];
  };

  const routes = Object.entries(document.paths).map(([template, item]) => ({ template, item, segments: template.split('/').slice(1) }));

  const operation = (method: string, url: string): Operation | undefined => {
    // As Express matches: literal segments case-insensitive, a trailing slash allowed, path
    // parameters decoded (a malformed escape matches nothing here; the API answers it 400).
    const segments = new URL(url, 'http://x').pathname.split('/').slice(1);
    if (segments.length > 1 && segments.at(-1) === '') segments.pop();
    const decoded = segments.map(decode);
    for (const { template, item, segments: expected } of routes) {
      const spec = item[method.toLowerCase()] as Operation['spec'] | undefined;
      if (!spec || expected.length !== decoded.length) continue;
      const pathParams: Record<string, string> = {};
      const matches = expected.every((part, i) => {
        const value = decoded[i];
        if (value === undefined) return false;
        const param = /^\{(.+)\}$/.exec(part)?.[1];
        if (param) pathParams[param] = value;
        return param !== undefined || part.toLowerCase() === value.toLowerCase();
      });
      if (matches) return { method: method.toLowerCase(), template, pointer: `/paths/${pointerSegment(template)}/${method.toLowerCase()}`, spec, pathParams };
    }
    return undefined;
  };

  /** A parameter with its pointer, following `$ref`s into components. */
  const parametersOf = (op: Operation): Array<{ param: JsonSchema; pointer: string }> =>
    (op.spec.parameters ?? []).map((param, i) => {
      const target = typeof param.$ref === 'string' ? param.$ref.replace(/^#/, '') : `${op.pointer}/parameters/${i}`;
      return { param: resolve(document, target) ?? {}, pointer: target };
    });

  const checkRequest = (method: string, url: string, body: unknown): string[] => {
    const op = operation(method, url);
    if (!op) return [`${method} ${new URL(url, 'http://x').pathname} is not in the document`];
    const problems: string[] = [];
    const query = new URL(url, 'http://x').searchParams;
    const params = parametersOf(op);
    for (const { param, pointer } of params) {
      const name = param.name as string;
      const value = param.in === 'path' ? op.pathParams[name] : param.in === 'query' ? query.get(name) ?? undefined : undefined;
      if (value === undefined) {
        if (param.required === true) problems.push(`${param.in} parameter ${name} is required`);
        continue;
      }
      if (param.in === 'query' && query.getAll(name).length > 1) problems.push(`query parameter ${name} is repeated`);
      problems.push(...check(`${pointer}/schema`, value, `${param.in} parameter ${name}`));
    }
    const known = new Set(params.filter(({ param }) => param.in === 'query').map(({ param }) => param.name));
    for (const name of new Set(query.keys())) if (!known.has(name)) problems.push(`query parameter ${name} is not in the document`);
    const requestBody = op.spec.requestBody as { required?: boolean; content: Record<string, unknown> } | undefined;
    // A body sent to an operation that takes none is not read: nothing to check.
    if (body === undefined) {
      if (requestBody?.required) problems.push('the request body is required');
    } else if (requestBody) {
      problems.push(...check(`${op.pointer}/requestBody/content/application~1json/schema`, body, 'request body'));
    }
    return problems;
  };

  const checkResponse = (method: string, url: string, status: number, contentType: string | undefined, body: unknown): string[] => {
    const op = operation(method, url);
    if (!op) {
      // No operation: only an error can answer it, in the one envelope.
      if (status < 400) return [`${method} ${new URL(url, 'http://x').pathname} answered ${status} but is not in the document`];
      return [...jsonType(contentType), ...check('/components/schemas/Error', body, 'response body')];
    }
    const response = op.spec.responses[String(status)] ?? op.spec.responses.default;
    if (!response) return [`${status} is not a documented response of ${op.method.toUpperCase()} ${op.template} (documented: ${Object.keys(op.spec.responses).join(', ')})`];
    const key = op.spec.responses[String(status)] ? String(status) : 'default';
    const content = response.content as Record<string, unknown> | undefined;
    if (!content) return body === undefined ? [] : [`${status} of ${op.template} is documented without a body`];
    return [...jsonType(contentType), ...check(`${op.pointer}/responses/${key}/content/application~1json/schema`, body, 'response body')];
  };

  return { document, operation, checkRequest, checkResponse, validator };
}

function jsonType(contentType: string | undefined): string[] {
  return /^application\/json(;|$)/.test(contentType ?? '') ? [] : [`content-type is ${contentType ?? 'missing'}, not application/json`];
}

function isBareRef(node: JsonSchema | undefined): node is { $ref: string } {
  return node !== undefined && typeof node.$ref === 'string' && node.$ref.startsWith('#/') && Object.keys(node).length === 1;
}

function decode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

function pointerSegment(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

function resolve(document: JsonSchema, pointer: string): JsonSchema | undefined {
  let node: unknown = document;
  for (const part of pointer.split('/').slice(1)) {
    node = (node as Record<string, unknown> | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return node as JsonSchema | undefined;
}
