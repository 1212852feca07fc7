import type { Logger } from 'pino';
import type { Store, TargetHealth } from '../state/store.js';
import type { EventBus } from '../telemetry/bus.js';
import type { AllEvents } from './topology.js';

/**
 * Keeps each target's health in the journal (for status and /healthz) in step with the
 * supervisor: `stage.park` of a target → `down` with the reason and the retry time, and
 * `target.down` (warned once per new reason); `stage.unpark` → `up`, and `target.up`; the first
 * upload after a park says the target is back. A health write that fails is logged and
 * emitted as `journal.error` (the pipeline goes on; the next change writes it again). Starts by
 * recording every target `up`. Returns the function that stops listening.
 */
export async function trackTargetHealth(bus: EventBus<AllEvents>, store: Store, targetIds: readonly string[], log: Logger): Promise<() => void> {
  const write = (target: string, health: TargetHealth) => {
    store.setHealth(health).catch((e: unknown) => {
      log.error({ err: e, target }, 'cannot record the target’s health in the journal');
      bus.emit('journal.error', { operation: 'record a target’s health', target, error: e });
    });
  };
  // Warn once per change of state (up → parked, or a new reason), not at every retry.
  const parkedFor = new Map<string, string>();
  const offPark = bus.on('stage.park', ({ stage, reason, retryInMs }) => {
    if (!targetIds.includes(stage)) return;
    const now = Date.now();
    if (parkedFor.get(stage) !== reason) {
      log.warn({ target: stage, reason, retryInMs }, 'target parked: its deliveries wait on disk until it is tried again');
    } else {
      log.debug({ target: stage, reason, retryInMs }, 'target still parked: tried again later');
    }
    parkedFor.set(stage, reason);
    write(stage, { target: stage, status: 'down', reason, since: now, retryAt: now + retryInMs });
    bus.emit('target.down', { target: stage, reason, retryAt: now + retryInMs });
  });
  const offUnpark = bus.on('stage.unpark', ({ stage }) => {
    if (!targetIds.includes(stage)) return;
    log.debug({ target: stage }, 'parked target tried again');
    write(stage, { target: stage, status: 'up', reason: null, since: Date.now(), retryAt: null });
    bus.emit('target.up', { target: stage });
  });
  const offBack = bus.on('upload.stop', ({ target }) => {
    if (parkedFor.delete(target)) log.info({ target }, 'target back from parking: it archives again');
  });
  // On a shared journal a target another daemon parked stays parked until its retry time.
  const fleetHealth = store.nodes ? await store.health() : [];
  for (const id of targetIds) {
    const h = fleetHealth.find((x) => x.target === id);
    if (h?.status === 'down' && (h.retryAt ?? 0) > Date.now()) continue;
    await store.setHealth({ target: id, status: 'up', reason: null, since: Date.now(), retryAt: null });
  }
  return () => {
    offPark();
    offUnpark();
    offBack();
  };
}
