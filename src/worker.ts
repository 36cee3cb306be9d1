/**
 * The worker: runs rollout workflows and their activities. It chooses the adapter
 * implementations (the embedded gateway by default) and wires them into the activities.
 */
import { DefaultLogger, NativeConnection, Runtime, Worker, type LogLevel, type WorkerOptions } from '@temporalio/worker';
import { createActivities, registryAdapters, type ActivityDeps } from './activities';
import { webhookNotifier } from './activities/webhook-notifier';
import { adapterSettings, describeTemporalSecurity, loadConfig, temporalConnectionOptions, type Config, type WorkerTuningSettings, type WorkerVersioningSettings } from './config';
import { connectError } from './temporal-connect';

export const WORKFLOWS_PATH = require.resolve('./workflows');

/** Each rollout's router and metric source, by the kinds its spec names (src/activities/routers, metric-sources). */
export function defaultActivityDeps(config: Config): ActivityDeps {
  return registryAdapters(adapterSettings(config), webhookNotifier());
}

/**
 * Worker Versioning, when WORKER_DEPLOYMENT_NAME and WORKER_BUILD_ID are set: this worker polls
 * as that Worker Deployment Version, and each rollout it starts gets the default behavior
 * (PINNED: it stays on this build to its end). Unset: unversioned, every worker takes every task.
 */
export function workerDeploymentOptions(versioning: WorkerVersioningSettings | undefined): Pick<WorkerOptions, 'workerDeploymentOptions'> {
  if (!versioning) return {};
  return {
    workerDeploymentOptions: {
      version: { deploymentName: versioning.deploymentName, buildId: versioning.buildId },
      useWorkerVersioning: true,
      defaultVersioningBehavior: versioning.defaultBehavior,
    },
  };
}

export async function createWorker(
  connection: NativeConnection,
  config: Pick<Config, 'namespace' | 'taskQueue' | 'workerVersioning'> & Partial<Pick<Config, 'workerTuning'>>,
  deps: ActivityDeps,
  options: Partial<WorkerOptions> = {},
): Promise<Worker> {
  return Worker.create({
    connection,
    namespace: config.namespace,
    taskQueue: config.taskQueue,
    workflowsPath: WORKFLOWS_PATH,
    activities: createActivities(deps),
    // A graceful shutdown needs the server; while Temporal is down it would wait forever.
    shutdownForceTime: '10s',
    ...workerDeploymentOptions(config.workerVersioning),
    ...(config.workerTuning ? workerTuningOptions(config.workerTuning) : {}),
    ...options,
  });
}

/** What the startup line says of the worker's version: e.g. `deployment model-canary, build 2026-12-01.1, PINNED`. */
export function describeWorkerVersioning(versioning: WorkerVersioningSettings | undefined): string {
  return versioning ? `deployment ${versioning.deploymentName}, build ${versioning.buildId}, ${versioning.defaultBehavior}` : 'unversioned';
}

/** The worker's capacity (src/config.ts WorkerTuningSettings) as Worker.create options. */
export function workerTuningOptions(tuning: WorkerTuningSettings): Partial<WorkerOptions> {
  return {
    maxCachedWorkflows: tuning.maxCachedWorkflows,
    // The SDK refuses more workflow tasks in flight than cached workflows.
    maxConcurrentWorkflowTaskExecutions: Math.min(tuning.maxConcurrentWorkflowTaskExecutions, tuning.maxCachedWorkflows),
    maxConcurrentActivityTaskExecutions: tuning.maxConcurrentActivityTaskExecutions,
    workflowTaskPollerBehavior: { type: 'simple-maximum', maximum: tuning.workflowTaskPollers },
    activityTaskPollerBehavior: { type: 'simple-maximum', maximum: tuning.activityTaskPollers },
  };
}

const LOG_LEVELS: LogLevel[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'];

async function main(): Promise<void> {
  const level = (process.env.LOG_LEVEL || 'info').toUpperCase();
  if (!LOG_LEVELS.includes(level as LogLevel)) throw new Error(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (any case), got "${process.env.LOG_LEVEL}"`);
  Runtime.install({ logger: new DefaultLogger(level as LogLevel) });
  const config = loadConfig();
  // TLS files are read here, at startup: a missing one is an error naming its variable.
  const connection = await NativeConnection.connect(temporalConnectionOptions(config)).catch((err: unknown) => {
    throw connectError(err, config);
  });
  try {
    const worker = await createWorker(connection, config, defaultActivityDeps(config));
    console.log(
      `worker polling task queue "${config.taskQueue}" on ${config.temporalAddress} (${describeTemporalSecurity(config)}; ${describeWorkerVersioning(config.workerVersioning)}; gateway ${config.gatewayUrl})`,
    );
    await worker.run(); // returns after SIGINT/SIGTERM, once in-flight tasks are done
  } finally {
    await connection.close();
  }
}

if (require.main === module) {
  main().catch((err) => {
    // A connection or settings error is one line that says what to fix; anything else, with its stack.
    console.error(err instanceof Error && /^(cannot connect to Temporal|TEMPORAL_|WORKER_)/.test(err.message) ? `worker: ${err.message}` : err);
    process.exit(1);
  });
}
