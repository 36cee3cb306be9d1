/** The REST client of the model-canary API, its watcher and evidence reader: one module for the CLI and the demo. */
export * from './api';
export * from './watch';
export * from './evidence';
