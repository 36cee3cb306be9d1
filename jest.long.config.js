/**
 * `npm run test:long`: suites that run for minutes (20,000 checks on the time-skipping server).
 * Run alone, after `npm test`, so that their CPU use does not slow the timing-sensitive suites.
 */
const base = require('./jest.config');

/** @type {import('jest').Config} */
module.exports = { ...base, testMatch: ['<rootDir>/test/long/**/*.test.ts'], testPathIgnorePatterns: [], maxWorkers: 1, testTimeout: 1_500_000 };
