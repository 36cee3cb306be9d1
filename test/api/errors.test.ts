/** The error mappings no Temporal scenario produces on demand: bugs, gRPC failures, parser and body errors, validation. */
import express from 'express';
import { ServiceError } from '@temporalio/client';
import pino from 'pino';
import { z } from 'zod';
import { ApiError, MAX_ISSUES, bodyError, errorHandler, invalidInput, notFoundRoute, parserError, toApiError, validate } from '../../src/api/errors';
import { listen, request } from '../helpers/http';

describe('error envelope', () => {
  it('answers an unexpected error with a 500 envelope that reveals no internals', async () => {
    const app = express();
    app.get('/boom', () => {
      throw new Error('secret detail at /srv/app.ts:42');
    });
    app.use(notFoundRoute);
    app.use(errorHandler(pino({ level: 'silent' })));
    const server = await listen(app);
    try {
      const res = await request(server.url, 'GET', '/boom');
      expect(res.status).toBe(500);
      expect(res.body).toEqual({ error: { code: 'internal', message: 'internal error; see the API log' } });
      expect(JSON.stringify(res.body)).not.toContain('secret');
      const missing = await request(server.url, 'DELETE', '/nothing');
      expect(missing.status).toBe(404);
      expect(missing.body.error.code).toBe('not_found');
    } finally {
      await server.close();
    }
  });

  it('maps Temporal being unreachable to 503 and deadlines to 504', () => {
    const unavailable = Object.assign(new Error('14 UNAVAILABLE: connection refused'), { code: 14 });
    expect(toApiError(new ServiceError('Failed to start Workflow', { cause: unavailable }))).toMatchObject({ status: 503, code: 'temporal_unavailable' });
    const deadline = Object.assign(new Error('4 DEADLINE_EXCEEDED'), { code: 4 });
    expect(toApiError(new ServiceError('Failed to query Workflow', { cause: deadline }))).toMatchObject({ status: 504, code: 'timeout' });
    expect(toApiError(new ApiError(409, 'conflict', 'x'))).toMatchObject({ status: 409 });
    expect(toApiError(new Error('bug'))).toBeUndefined();
  });

  it('maps a failing workflow task to 503 saying what to do, other failed preconditions to 409', () => {
    const failing = Object.assign(new Error('9 FAILED_PRECONDITION: Unable to perform workflow execution update due to Workflow Task in failed state.'), {
      code: 9,
      details: 'Unable to perform workflow execution update due to Workflow Task in failed state.',
    });
    const mapped = toApiError(new ServiceError('Workflow Update failed', { cause: failing }));
    expect(mapped).toMatchObject({ status: 503, code: 'workflow_task_failing' });
    expect(mapped?.message).toContain('Workflow Task in failed state');
    expect(mapped?.message).toMatch(/fix or roll back the worker, or terminate the rollout/);
    const other = Object.assign(new Error('9 FAILED_PRECONDITION: something else'), { code: 9, details: 'something else' });
    expect(toApiError(new ServiceError('Workflow Update failed', { cause: other }))).toMatchObject({ status: 409, code: 'not_applicable' });
  });

  it('maps body-reading errors to 4xx: corrupt compression, untyped errors, the router\'s URIError', () => {
    const zlibError = Object.assign(new Error('incorrect header check'), { code: 'Z_DATA_ERROR', errno: -3, status: 400, expose: true });
    expect(bodyError(zlibError, 'gzip')).toMatchObject({ status: 400, code: 'invalid_request', message: expect.stringContaining('not valid gzip data') });
    expect(bodyError(zlibError, undefined)).toMatchObject({ status: 400, code: 'invalid_request' });
    expect(bodyError(new TypeError('invalid media type'), undefined)).toMatchObject({ status: 400, code: 'invalid_request' });
    expect(bodyError(Object.assign(new Error('x'), { type: 'encoding.unsupported', encoding: 'lz4' }), 'lz4')).toMatchObject({ status: 415, message: expect.stringContaining('"lz4"') });
    expect(toApiError(Object.assign(new URIError("Failed to decode param '%zz'"), { status: 400 }))).toMatchObject({ status: 400, code: 'invalid_request' });
    expect(toApiError(zlibError)).toMatchObject({ status: 400, code: 'invalid_request' });
  });

  it('maps Node parser errors to 431, 408, 413 and 400', () => {
    const parser = (code: string) => parserError(Object.assign(new Error('Parse Error'), { code, reason: 'Invalid method encountered' }), 16 * 1024);
    expect(parser('HPE_HEADER_OVERFLOW')).toMatchObject({ status: 431, code: 'headers_too_large', message: expect.stringContaining('16 KiB') });
    expect(parser('ERR_HTTP_REQUEST_TIMEOUT')).toMatchObject({ status: 408, code: 'timeout' });
    expect(parser('HPE_CHUNK_EXTENSIONS_OVERFLOW')).toMatchObject({ status: 413, code: 'payload_too_large' });
    expect(parser('HPE_INVALID_METHOD')).toMatchObject({ status: 400, code: 'invalid_request', message: 'malformed HTTP request: Invalid method encountered' });
  });

  it('validates into one issue per field, unknown keys at their own path', () => {
    const schema = z.strictObject({ runId: z.string({ error: 'runId must be given once' }).optional() });
    let thrown: unknown;
    try {
      validate(schema, { runId: ['a', 'b'], colour: 'x', 'a[b]': '1' }, 'query');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ApiError);
    expect((thrown as ApiError).issues).toEqual([
      { path: 'runId', message: 'runId must be given once' },
      { path: 'colour', message: 'unknown query parameter "colour"; expected runId' },
      { path: 'a[b]', message: 'unknown query parameter "a[b]"; expected runId' },
    ]);
    expect(validate(schema, { runId: 'x' }, 'query')).toEqual({ runId: 'x' });
  });

  it('lists at most MAX_ISSUES issues and cuts huge messages', () => {
    const issues = Array.from({ length: 1000 }, (_, i) => ({ path: `steps.${i}`, message: 'x'.repeat(10_000) }));
    const err = invalidInput('invalid_spec', 'invalid rollout spec', issues);
    expect(err.issues).toHaveLength(MAX_ISSUES);
    expect(err.message).toMatch(/^invalid rollout spec \(the first 50 of 1000 issues\): steps\.0: x+… \(10000 characters\);/);
    expect(err.message.length).toBeLessThan(20_000);
  });
});
