/**
 * Packages published as ES modules only (@kubernetes/client-node 1.x and three of its
 * dependencies): Jest's module system on Node 20 cannot load ES modules, so they are compiled to
 * CommonJS like the project's own TypeScript.
 */
const esmOnly = ['@kubernetes/client-node', 'openid-client', 'oauth4webapi', 'jose'];

/** Run after the rest, one at a time (jest.components.config.js). */
const componentSuites = require('./test/component-suites').map((p) => `<rootDir>/${p.replace(/\./g, '\\.')}`);

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022' } }],
    [`/node_modules/(${esmOnly.join('|')})/.+\\.js$`]: ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }],
  },
  transformIgnorePatterns: [`/node_modules/(?!(${esmOnly.join('|')})/)`],
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // test/long and test/faults run on their own (`npm run test:long`, `npm run test:faults`); the suites of real
  // third-party components run after the rest, one at a time (jest.components.config.js).
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/long/', '<rootDir>/test/faults/', ...componentSuites],
  testTimeout: 120_000,
  // Suites share 2 cores with Temporal servers; run files one or two at a time.
  maxWorkers: 2,
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
};
