/** The error envelope for what no Temporal scenario produces on demand: bugs and gRPC failures. */
import express from 'express';
import { ServiceError } from '@temporalio/client';
import pino from 'pino';
import { ApiError, errorHandler, notFoundRoute, toApiError } from '../../src/api/errors';
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
});
