/**
 * The emitting side of a bus, which is all an emitter needs. Any `EventBus<M & More>` is an
 * `Emitter<M>`: the runtime takes `Emitter<StageEvents>`, so the pipeline can pass its wider bus.
 */
export interface Emitter<M extends Record<string, object>> {
  emit<K extends keyof M & string>(name: K, payload: M[K]): void;
}

/**
 * A typed, synchronous event bus. Logs, metrics and tests subscribe to it; stages and the
 * supervisor emit on it. Event names are `noun.verb`.
 *
 * Guarantees: listeners run synchronously, in the order they subscribed, `on` listeners before
 * `onAny` listeners; a listener that throws is ignored (it cannot break `emit` nor stop the other
 * listeners), so telemetry can never crash a stage.
 */
export class EventBus<M extends Record<string, object>> implements Emitter<M> {
  readonly #listeners = new Map<keyof M, Set<(payload: never) => void>>();
  readonly #any = new Set<(name: keyof M & string, payload: M[keyof M]) => void>();

  /** Calls `fn` on every `name` event. Returns the function that unsubscribes it. */
  on<K extends keyof M>(name: K, fn: (payload: M[K]) => void): () => void {
    let set = this.#listeners.get(name);
    if (!set) this.#listeners.set(name, (set = new Set()));
    const listeners = set;
    listeners.add(fn);
    return () => {
      listeners.delete(fn);
    };
  }

  /** Calls `fn` on every event, whatever its name. Returns the function that unsubscribes it. */
  onAny(fn: (name: keyof M & string, payload: M[keyof M]) => void): () => void {
    this.#any.add(fn);
    return () => {
      this.#any.delete(fn);
    };
  }

  /** Delivers `payload` to the listeners of `name`, then to the `onAny` listeners. */
  emit<K extends keyof M & string>(name: K, payload: M[K]): void {
    const set = this.#listeners.get(name);
    if (set) {
      for (const fn of [...set]) {
        try {
          (fn as (p: M[K]) => void)(payload);
        } catch {
          // A broken listener must not break the emitter; telemetry is best effort.
        }
      }
    }
    for (const fn of [...this.#any]) {
      try {
        fn(name, payload);
      } catch {
        // As above.
      }
    }
  }
}

/**
 * The events of the stage runtime. The pipeline adds its own by intersection
 * (`EventBus<StageEvents & PipelineEvents>` is accepted wherever `Emitter<StageEvents>` is).
 *
 * - `stage.start` / `stage.stop`: a stage started / stopped in order (`reason` is `shutdown`).
 * - `stage.crash`: a stage crashed. Emitted once per crash, by whoever listens for it (the
 *   supervisor, with `restarts` so far; the pipeline; else the stage, `restarts` 0): see
 *   docs/architecture.md §2.1.
 * - `stage.restart`: the supervisor starts a crashed child again (`restarts` counts them).
 * - `stage.park` / `stage.unpark`: the supervisor gave up on a child for `retryInMs` / retries it.
 * - `stage.subscribe`: a consumer subscribed to a producer.
 * - `stage.ask`: a consumer sent `demand` more to a producer.
 */
export type StageEvents = {
  'stage.start': { stage: string };
  'stage.stop': { stage: string; reason: string };
  'stage.crash': { stage: string; error: unknown; restarts: number };
  'stage.restart': { stage: string; restarts: number };
  'stage.park': { stage: string; reason: string; retryInMs: number };
  'stage.unpark': { stage: string };
  'stage.subscribe': { producer: string; consumer: string; minDemand: number; maxDemand: number };
  'stage.ask': { producer: string; consumer: string; demand: number };
};
