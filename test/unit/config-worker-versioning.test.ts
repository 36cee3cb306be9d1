/**
 * The Worker Versioning settings (src/config.ts): WORKER_DEPLOYMENT_NAME + WORKER_BUILD_ID (both
 * or neither) and WORKER_VERSIONING_BEHAVIOR → the Worker's `workerDeploymentOptions`
 * (src/worker.ts), and the errors that name the variable.
 */
import { loadConfig } from '../../src/config';
import { describeWorkerVersioning, workerDeploymentOptions } from '../../src/worker';

const versioned = { WORKER_DEPLOYMENT_NAME: 'model-canary', WORKER_BUILD_ID: '2026-12-01.1' };

describe('worker versioning settings', () => {
  it('unset: an unversioned worker, as before', () => {
    const config = loadConfig({});
    expect(config.workerVersioning).toBeUndefined();
    expect(workerDeploymentOptions(config.workerVersioning)).toEqual({});
    expect(describeWorkerVersioning(config.workerVersioning)).toBe('unversioned');
    expect(loadConfig({ WORKER_DEPLOYMENT_NAME: ' ', WORKER_BUILD_ID: '' }).workerVersioning).toBeUndefined();
  });

  it('a deployment name and a build ID: a versioned worker whose rollouts are pinned by default', () => {
    const config = loadConfig(versioned);
    expect(config.workerVersioning).toEqual({ deploymentName: 'model-canary', buildId: '2026-12-01.1', defaultBehavior: 'PINNED' });
    expect(workerDeploymentOptions(config.workerVersioning)).toEqual({
      workerDeploymentOptions: {
        version: { deploymentName: 'model-canary', buildId: '2026-12-01.1' },
        useWorkerVersioning: true,
        defaultVersioningBehavior: 'PINNED',
      },
    });
    expect(describeWorkerVersioning(config.workerVersioning)).toBe('deployment model-canary, build 2026-12-01.1, PINNED');
  });

  it('WORKER_VERSIONING_BEHAVIOR: pinned or auto-upgrade, in any case', () => {
    for (const [raw, behavior] of [['pinned', 'PINNED'], ['PINNED', 'PINNED'], ['auto-upgrade', 'AUTO_UPGRADE'], ['AUTO_UPGRADE', 'AUTO_UPGRADE'], [' Auto_Upgrade ', 'AUTO_UPGRADE']]) {
      expect(loadConfig({ ...versioned, WORKER_VERSIONING_BEHAVIOR: raw }).workerVersioning?.defaultBehavior).toBe(behavior);
    }
    expect(() => loadConfig({ ...versioned, WORKER_VERSIONING_BEHAVIOR: 'sticky' })).toThrow('WORKER_VERSIONING_BEHAVIOR must be pinned or auto-upgrade (any case), got "sticky"');
  });

  it('one without the other, or a behavior without either, is an error naming the variables', () => {
    expect(() => loadConfig({ WORKER_DEPLOYMENT_NAME: 'model-canary' })).toThrow(
      'WORKER_DEPLOYMENT_NAME is set but WORKER_BUILD_ID is not: a versioned worker needs its deployment name and its build ID (set both, or neither)',
    );
    expect(() => loadConfig({ WORKER_BUILD_ID: 'abc123' })).toThrow('WORKER_BUILD_ID is set but WORKER_DEPLOYMENT_NAME is not');
    expect(() => loadConfig({ WORKER_VERSIONING_BEHAVIOR: 'pinned' })).toThrow(
      'WORKER_VERSIONING_BEHAVIOR is set but WORKER_DEPLOYMENT_NAME and WORKER_BUILD_ID are not',
    );
  });

  it('names the server refuses are refused at startup', () => {
    // The server: "worker deployment name cannot contain '.'" (a version is `<name>.<build ID>`).
    expect(() => loadConfig({ ...versioned, WORKER_DEPLOYMENT_NAME: 'model.canary' })).toThrow(/^WORKER_DEPLOYMENT_NAME must be .*no dot.*got "model\.canary"$/);
    expect(() => loadConfig({ ...versioned, WORKER_DEPLOYMENT_NAME: 'x'.repeat(256) })).toThrow(/^WORKER_DEPLOYMENT_NAME must be 1 to 255/);
    expect(() => loadConfig({ ...versioned, WORKER_BUILD_ID: 'build 1' })).toThrow('WORKER_BUILD_ID must be 1 to 255 letters, digits and _ . + - (e.g. a version or a git commit), got "build 1"');
    expect(loadConfig({ ...versioned, WORKER_BUILD_ID: 'v1.4.0+3f2c1ab' }).workerVersioning?.buildId).toBe('v1.4.0+3f2c1ab');
  });
});
