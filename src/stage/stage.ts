import { StagecoachError } from '../errors.js';
import type { Emitter, StageEvents } from '../telemetry/bus.js';
import type { Child } from './supervisor.js';

/** @internal Keys of the runtime's internals on a stage; not part of the public API. */
export const CTX: unique symbol = Symbol('stagecoach.stage.ctx');
export const INBOX: unique symbol = Symbol('stagecoach.stage.inbox');
export const OUTBOX: unique symbol = Symbol('stagecoach.stage.outbox');
export const ENDS: unique symbol = Symbol('stagecoach.stage.ends');

/**
 * `idle` (built, not started) → `starting` (init running) → `running` → `stopping` (draining)
 * → `stopped`; from `starting`, `running` or `stopping` a callback failure leads to `crashed`.
 */
export type StageState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' | 'crashed';

export interface StageOptions {
  /** Names the stage in events and is the default subscription id of a consumer. */
  name: string;
  /** Where the stage emits `stage.*` events. */
  bus?: Emitter<StageEvents> | undefined;
}

/** @internal What a stage's inbox and outbox may do to their stage. */
export interface StageContext {
  readonly name: string;
  readonly bus: Emitter<StageEvents> | undefined;
  /** Runs `fn` later, never inside the caller's stack; held until the stage starts. */
  post(fn: () => void): void;
  /** Calls a user callback; its value (awaited) goes to `then`; a throw or rejection crashes. */
  invoke<T>(fn: () => T | PromiseLike<T>, then: (value: T) => void): void;
  crash(error: unknown): void;
  running(): boolean;
  /** Running or stopping: still handling what it was sent. */
  live(): boolean;
  checkDrain(): void;
}

/** @internal What the lifecycle needs from a stage's ends. */
export interface Ends {
  inbox?: { cancelAll(reason: string): void };
  outbox?: { cancelAll(reason: string): void };
  /** False while the stage still has queued input it could hand to a callback. */
  idle?(): boolean;
}

/**
 * What every stage shares: a name, a lifecycle and crash reporting. Subclass Producer, Consumer
 * or ProducerConsumer, not this. Messages, lifecycle, `stop()` and crashes (who emits
 * `stage.crash`): docs/architecture.md §2.1.
 */
export abstract class Stage implements Child {
  readonly name: string;
  protected readonly bus: Emitter<StageEvents> | undefined;
  /** @internal */
  readonly [CTX]: StageContext;

  #state: StageState = 'idle';
  // Messages that arrive before start are held so no callback runs before init has finished.
  #mailbox: Array<() => void> | undefined = [];
  readonly #crashListeners = new Set<(error: unknown) => void>();
  #inflight = 0;
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #drained: (() => void) | undefined;

  constructor(options: StageOptions) {
    if (typeof options?.name !== 'string' || options.name === '') {
      throw new StagecoachError('stage.invalid-options', `Expected \`name\` to be a non-empty string, got ${String(options?.name)}`);
    }
    this.name = options.name;
    this.bus = options.bus;
    this[CTX] = {
      name: this.name,
      bus: this.bus,
      post: (fn) => this.#post(fn),
      invoke: (fn, then) => this.#invoke(fn, then),
      crash: (error) => this.#crash(error),
      running: () => this.#state === 'running',
      live: () => this.#state === 'running' || this.#state === 'stopping',
      checkDrain: () => this.#checkDrain(),
    };
  }

  get state(): StageState {
    return this.#state;
  }

  /** Called once by `start()` before any other callback. MAY be async; a throw fails `start()`. */
  protected init?(): void | Promise<void>;
  /** Called once after the stage stopped (`shutdown`) or crashed (`crash`). MAY be async. */
  protected terminate?(reason: string): void | Promise<void>;
  /** @internal */
  protected abstract [ENDS](): Ends;

  /**
   * Runs `init`, then lets the messages held since construction in (a consumer's first ask, a
   * producer's first demand). Idempotent. If `init` throws, the stage is `crashed` and `start`
   * rejects with that error (the caller reports it; the crash listeners are not called).
   */
  start(): Promise<void> {
    return (this.#starting ??= this.#start());
  }

  /** Orderly stop; see the class doc. Idempotent; resolves at once for a crashed stage. */
  stop(): Promise<void> {
    return (this.#stopping ??= this.#stop());
  }

  /**
   * Crashes the stage from work it runs outside its callbacks (a timer, a lease it started), as a
   * callback that throws would. Does nothing once the stage is stopped or crashed.
   */
  protected crash(error: unknown): void {
    this.#crash(error);
  }

  /** Calls `cb` once if the stage crashes. Returns the function that removes `cb`. */
  onCrash(cb: (error: unknown) => void): () => void {
    this.#crashListeners.add(cb);
    return () => {
      this.#crashListeners.delete(cb);
    };
  }

  async #start(): Promise<void> {
    if (this.#state !== 'idle') return;
    this.#state = 'starting';
    try {
      await this.init?.();
    } catch (error) {
      this.#state = 'crashed';
      this.#mailbox = undefined;
      this.#teardown('crash');
      throw error;
    }
    this.#state = 'running';
    this.bus?.emit('stage.start', { stage: this.name });
    const held = this.#mailbox ?? [];
    this.#mailbox = undefined;
    for (const fn of held) this.#post(fn);
  }

  async #stop(): Promise<void> {
    // Only wait when init is still running: a running stage stops asking at once.
    if (this.#state === 'starting') await this.#starting?.catch(() => undefined);
    if (this.#state === 'idle') {
      this.#state = 'stopped';
      this.#mailbox = undefined;
      this.#teardown('shutdown');
      return;
    }
    if (this.#state !== 'running') return;
    this.#state = 'stopping';
    const ends = this[ENDS]();
    ends.inbox?.cancelAll('shutdown');
    await new Promise<void>((resolve) => {
      this.#drained = resolve;
      this.#checkDrain();
    });
    // A crash while draining has already reported itself and torn everything down.
    if (this.#state !== 'stopping') return;
    this.#state = 'stopped';
    ends.outbox?.cancelAll('shutdown');
    await this.terminate?.('shutdown');
    this.bus?.emit('stage.stop', { stage: this.name, reason: 'shutdown' });
  }

  #post(fn: () => void): void {
    if (this.#mailbox) {
      this.#mailbox.push(fn);
      return;
    }
    queueMicrotask(() => {
      try {
        fn();
      } catch (error) {
        this.#crash(error);
      }
    });
  }

  #invoke<T>(fn: () => T | PromiseLike<T>, then: (value: T) => void): void {
    if (this.#state !== 'running' && this.#state !== 'stopping') return;
    let result: T | PromiseLike<T>;
    try {
      result = fn();
    } catch (error) {
      this.#crash(error);
      return;
    }
    this.#inflight++;
    Promise.resolve(result).then(
      (value) => {
        this.#inflight--;
        if (this.#state !== 'running' && this.#state !== 'stopping') return;
        try {
          then(value);
        } catch (error) {
          this.#crash(error);
          return;
        }
        this.#checkDrain();
      },
      (error: unknown) => {
        this.#inflight--;
        this.#crash(error);
      },
    );
  }

  #checkDrain(): void {
    if (this.#state !== 'stopping' || !this.#drained) return;
    const ends = this[ENDS]();
    if (this.#inflight > 0 || ends.idle?.() === false) return;
    const resolve = this.#drained;
    this.#drained = undefined;
    resolve();
  }

  #crash(error: unknown): void {
    if (this.#state === 'crashed' || this.#state === 'stopped' || this.#state === 'idle') return;
    this.#state = 'crashed';
    this.#mailbox = undefined;
    this.#teardown('crash');
    const resolve = this.#drained;
    this.#drained = undefined;
    resolve?.();
    // The crash itself is what gets reported; a failing cleanup after it adds nothing.
    void Promise.resolve()
      .then(() => this.terminate?.('crash'))
      .catch(() => undefined);
    if (this.#crashListeners.size === 0) this.bus?.emit('stage.crash', { stage: this.name, error, restarts: 0 });
    for (const cb of [...this.#crashListeners]) {
      try {
        cb(error);
      } catch {
        // A supervisor's bug must not turn one crash into two.
      }
    }
  }

  #teardown(reason: string): void {
    const ends = this[ENDS]();
    ends.inbox?.cancelAll(reason);
    ends.outbox?.cancelAll(reason);
  }
}
