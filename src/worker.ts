/**
 * The worker: runs rollout workflows and their activities. It chooses the adapter
 * implementations (the embedded gateway by default) and wires them into the activities.
 */
import { DefaultLogger, NativeConnection, Runtime, Worker, type LogLevel, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from './activities';
import { gatewayMetricSource } from './activities/gateway-metrics';
import { gatewayTrafficRouter } from './activities/gateway-router';
import { webhookNotifier } from './activities/webhook-notifier';
import { loadConfig, type Config } from './config';

export const WORKFLOWS_PATH = require.resolve('./workflows');

export function defaultActivityDeps(config: Config): ActivityDeps {
  const gateway = { url: config.gatewayUrl, adminToken: config.gatewayAdminToken };
  return {
    router: gatewayTrafficRouter(gateway),
    metrics: gatewayMetricSource(gateway),
    notifier: webhookNotifier(),
  };
}

export async function createWorker(
  connection: NativeConnection,
  config: Pick<Config, 'namespace' | 'taskQueue'>,
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
    ...options,
  });
}

const LOG_LEVELS: LogLevel[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'];

async function main(): Promise<void> {
  const level = (process.env.LOG_LEVEL || 'info').toUpperCase();
  if (!LOG_LEVELS.includes(level as LogLevel)) throw new Error(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (any case), got "${process.env.LOG_LEVEL}"`);
  Runtime.install({ logger: new DefaultLogger(level as LogLevel) });
  const config = loadConfig();
  const connection = await NativeConnection.connect({ address: config.temporalAddress });
  try {
    const worker = await createWorker(connection, config, defaultActivityDeps(config));
    console.log(`worker polling task queue "${config.taskQueue}" on ${config.temporalAddress} (gateway ${config.gatewayUrl})`);
    await worker.run(); // returns after SIGINT/SIGTERM, once in-flight tasks are done
  } finally {
    await connection.close();
  }
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
