/** Notifier that POSTs each event as JSON to a webhook URL. */
import { requestJson } from './http';
import type { Notifier, RolloutEvent } from './types';

export function webhookNotifier(options: { timeoutMs?: number } = {}): Notifier {
  return {
    async notify(destination: string, event: RolloutEvent) {
      await requestJson({ method: 'POST', url: destination, body: event, timeoutMs: options.timeoutMs });
    },
  };
}
