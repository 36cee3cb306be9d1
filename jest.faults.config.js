/**
 * `npm run test:faults`: the fault suite (test/faults), one file at a time — each kills and
 * restarts real processes (Temporal servers, workers, the API, model servers) under live traffic.
 */
const base = require('./jest.config');

/** @type {import('jest').Config} */
module.exports = { ...base, testMatch: ['<rootDir>/test/faults/**/*.test.ts'], testPathIgnorePatterns: ['/node_modules/'], maxWorkers: 1, testTimeout: 240_000 };
