import { StagecoachError } from '../errors.js';
import type { Emitter, StageEvents } from '../telemetry/bus.js';

/**
 * Something a supervisor runs. Every Stage is one. A child MUST report a crash through the
 * `onCrash` callbacks (once) and clean up after itself when it does: the supervisor does not call
 * `stop()` on a crashed child, it starts a fresh one.
 */
export interface Child {
  /** Orderly stop: stop taking work, finish what is in flight. */
  stop(): Promise<void>;
  /** Registers a crash callback; returns the function that removes it. */
  onCrash(cb: (error: unknown) => void): () => void;
}

/** How to (re)start one child. `start` MUST resolve with a started child; a throw is a crash. */
export interface ChildSpec {
  readonly id: string;
  start(): Promise<Child>;
}

/** Carried by a crash error (`error.park`) to park the child at once for `retryInMs`. */
export interface ParkRequest {
  reason: string;
  retryInMs: number;
  /**
   * A lasting reason (storage full, credentials revoked): the park counts toward the doubling
   * cool-down like a crash loop's, and `retryInMs` is only its least delay. Without it the park
   * lasts exactly `retryInMs` (a daily cap until it resets) and does not count.
   */
  backoff?: boolean;
}

/**
 * A crash that asks to be parked rather than restarted, e.g. a cloud's daily cap until it resets:
 * `throw new ParkError('daily upload cap reached', msUntilMidnightUtc)`. The message is the reason.
 */
export class ParkError extends StagecoachError {
  readonly park: ParkRequest;
  constructor(reason: string, retryInMs: number, options?: { cause?: unknown; backoff?: boolean }) {
    super('stage.park', reason, options);
    this.name = 'ParkError';
    this.park = options?.backoff ? { reason, retryInMs, backoff: true } : { reason, retryInMs };
  }
}

/** The ParkRequest an error carries (a ParkError, or any error with a well-formed `park`), if any. */
export function parkRequestOf(error: unknown): ParkRequest | undefined {
  if (typeof error !== 'object' || error === null || !('park' in error)) return undefined;
  const park = (error as { park: unknown }).park;
  if (typeof park !== 'object' || park === null) return undefined;
  const { reason, retryInMs, backoff } = park as Partial<ParkRequest>;
  if (typeof reason !== 'string' || typeof retryInMs !== 'number' || !(retryInMs >= 0)) return undefined;
  return backoff === true ? { reason, retryInMs, backoff } : { reason, retryInMs };
}

/**
 * `starting`: first start in progress. `running`. `restarting`: a start after a crash or a
 * park is in progress. `parked`: given up on until `retryAt`. `stopped`: closed, or not started.
 */
export type ChildState = 'starting' | 'running' | 'restarting' | 'parked' | 'stopped';

export interface ChildStatus {
  state: ChildState;
  /** Fresh instances started after the first (restarts after crashes, and retries after parks). */
  restarts: number;
  /** Why it is parked (the crash's message or the ParkRequest's reason); set while parked. */
  reason?: string;
  /** When a parked child will be retried (epoch ms); set while parked. */
  retryAt?: number;
}

export interface SupervisorOptions {
  /** Restarts allowed within `maxSeconds`; one more crash parks the child. Default 3. */
  maxRestarts?: number;
  /** The restart-intensity window, in seconds. Default 5. */
  maxSeconds?: number;
  /** First parking period; doubles on each consecutive park. Default 30 000 ms. */
  coolDownMs?: number;
  /** Cap of the doubling. Default 30 minutes. */
  coolDownMaxMs?: number;
  /** Where `stage.crash`, `stage.restart`, `stage.park`, `stage.unpark` go (`stage` = child id). */
  bus?: Emitter<StageEvents> | undefined;
}

/** What `close` achieved: ids stopped in time, ids still stopping at the deadline, stops that threw. */
export interface CloseReport {
  stopped: string[];
  abandoned: string[];
  failed: Array<{ id: string; error: unknown }>;
}

interface Entry {
  readonly spec: ChildSpec;
  state: ChildState;
  child: Child | undefined;
  unlisten: (() => void) | undefined;
  restarts: number;
  /** Crash times inside the intensity window. */
  crashes: number[];
  /** Consecutive parks, for the doubling. */
  parks: number;
  runningSince: number;
  reason: string | undefined;
  retryAt: number | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** The start (and the restarts it leads to) in progress. */
  launching: Promise<void> | undefined;
}

/**
 * one_for_one supervision, OTP style, with parking instead of giving up: `start()` starts the
 * children in order, a crashed child alone is restarted, too many crashes park it for a cool-down
 * that doubles, `close(deadlineMs)` stops them in reverse order within the deadline (idempotent).
 * The guarantees, with the defaults: docs/architecture.md §2.4.
 */
export class Supervisor {
  readonly #entries: Entry[];
  readonly #maxRestarts: number;
  readonly #windowMs: number;
  readonly #coolDownMs: number;
  readonly #coolDownMaxMs: number;
  readonly #bus: Emitter<StageEvents> | undefined;
  #closing = false;
  #started: Promise<void> | undefined;
  #closed: Promise<CloseReport> | undefined;

  constructor(children: readonly ChildSpec[], options: SupervisorOptions = {}) {
    const ids = new Set<string>();
    for (const spec of children) {
      if (ids.has(spec.id)) throw new StagecoachError('supervisor.duplicate-child', `two children have the id ${spec.id}`);
      ids.add(spec.id);
    }
    this.#maxRestarts = option(options, 'maxRestarts', 3, 0);
    this.#windowMs = option(options, 'maxSeconds', 5, 0) * 1000;
    this.#coolDownMs = option(options, 'coolDownMs', 30_000, 0);
    this.#coolDownMaxMs = option(options, 'coolDownMaxMs', 30 * 60_000, this.#coolDownMs);
    this.#bus = options.bus;
    this.#entries = children.map((spec) => ({
      spec,
      state: 'stopped',
      child: undefined,
      unlisten: undefined,
      restarts: 0,
      crashes: [],
      parks: 0,
      runningSince: 0,
      reason: undefined,
      retryAt: undefined,
      timer: undefined,
      launching: undefined,
    }));
  }

  start(): Promise<void> {
    return (this.#started ??= (async () => {
      for (const entry of this.#entries) {
        if (this.#closing) return;
        entry.state = 'starting';
        entry.launching = this.#launch(entry);
        await entry.launching;
      }
    })());
  }

  status(): Record<string, ChildStatus> {
    const out: Record<string, ChildStatus> = {};
    for (const e of this.#entries) {
      const s: ChildStatus = { state: e.state, restarts: e.restarts };
      if (e.state === 'parked') {
        if (e.reason !== undefined) s.reason = e.reason;
        if (e.retryAt !== undefined) s.retryAt = e.retryAt;
      }
      out[e.spec.id] = s;
    }
    return out;
  }

  close(deadlineMs = 30_000): Promise<CloseReport> {
    return (this.#closed ??= this.#close(deadlineMs));
  }

  /**
   * A parked child is retried now instead of at its `retryAt` (`stage.unpark`, then started as
   * after the cool-down), e.g. once what parked it was fixed (a sign-in). Returns false, doing
   * nothing, for a child that is not parked, an unknown id, or while closing.
   */
  retryNow(id: string): boolean {
    const entry = this.#entries.find((e) => e.spec.id === id);
    if (!entry || this.#closing || entry.state !== 'parked' || entry.timer === undefined) return false;
    clearTimeout(entry.timer);
    entry.timer = undefined;
    this.#bus?.emit('stage.unpark', { stage: entry.spec.id });
    entry.restarts++;
    entry.state = 'restarting';
    entry.launching = this.#launch(entry);
    return true;
  }

  async #launch(entry: Entry): Promise<void> {
    if (this.#closing) {
      entry.state = 'stopped';
      return;
    }
    let child: Child;
    try {
      child = await entry.spec.start();
    } catch (error) {
      return this.#crashed(entry, error);
    }
    entry.child = child;
    entry.state = 'running';
    entry.runningSince = Date.now();
    entry.reason = undefined;
    entry.retryAt = undefined;
    entry.unlisten = child.onCrash((error) => {
      if (entry.child !== child) return;
      entry.unlisten?.();
      entry.unlisten = undefined;
      entry.child = undefined;
      entry.launching = this.#crashed(entry, error);
    });
  }

  async #crashed(entry: Entry, error: unknown): Promise<void> {
    const now = Date.now();
    if (entry.state === 'running' && now - entry.runningSince >= this.#coolDownMs) entry.parks = 0;
    entry.crashes = entry.crashes.filter((t) => now - t < this.#windowMs);
    entry.crashes.push(now);
    this.#bus?.emit('stage.crash', { stage: entry.spec.id, error, restarts: entry.restarts });
    if (this.#closing) {
      entry.state = 'stopped';
      return;
    }
    const request = parkRequestOf(error);
    if (request?.backoff) {
      const delay = Math.max(request.retryInMs, Math.min(this.#coolDownMs * 2 ** entry.parks, this.#coolDownMaxMs));
      entry.parks++;
      return this.#park(entry, request.reason, delay);
    }
    if (request) return this.#park(entry, request.reason, request.retryInMs);
    if (entry.crashes.length > this.#maxRestarts) {
      const delay = Math.min(this.#coolDownMs * 2 ** entry.parks, this.#coolDownMaxMs);
      entry.parks++;
      return this.#park(entry, messageOf(error), delay);
    }
    entry.restarts++;
    entry.state = 'restarting';
    this.#bus?.emit('stage.restart', { stage: entry.spec.id, restarts: entry.restarts });
    return this.#launch(entry);
  }

  #park(entry: Entry, reason: string, retryInMs: number): void {
    entry.state = 'parked';
    entry.reason = reason;
    entry.retryAt = Date.now() + retryInMs;
    // A retry gets the full restart intensity again.
    entry.crashes = [];
    this.#bus?.emit('stage.park', { stage: entry.spec.id, reason, retryInMs });
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      if (this.#closing) return;
      this.#unpark(entry);
    }, retryInMs);
  }

  #unpark(entry: Entry): void {
    this.#bus?.emit('stage.unpark', { stage: entry.spec.id });
    entry.restarts++;
    entry.state = 'restarting';
    entry.launching = this.#launch(entry);
  }

  async #close(deadlineMs: number): Promise<CloseReport> {
    this.#closing = true;
    for (const entry of this.#entries) {
      if (entry.timer !== undefined) clearTimeout(entry.timer);
      entry.timer = undefined;
      if (entry.state === 'parked') entry.state = 'stopped';
    }
    const report: CloseReport = { stopped: [], abandoned: [], failed: [] };
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), deadlineMs);
    });
    let late = false;
    for (const entry of [...this.#entries].reverse()) {
      const stopping = this.#stopEntry(entry);
      const outcome = late ? 'deadline' : await Promise.race([stopping, deadline]);
      if (outcome === 'deadline') {
        late = true;
        report.abandoned.push(entry.spec.id);
      } else if (outcome === true) {
        report.stopped.push(entry.spec.id);
      } else {
        report.failed.push({ id: entry.spec.id, error: outcome.error });
      }
    }
    clearTimeout(timer);
    return report;
  }

  /** Stops the entry's child, once any start in progress has settled; true, or the stop's error. */
  async #stopEntry(entry: Entry): Promise<true | { error: unknown }> {
    await entry.launching;
    const child = entry.child;
    if (!child) {
      entry.state = 'stopped';
      return true;
    }
    // Still listening: a crash while stopping is reported (and, closing, not restarted).
    try {
      await child.stop();
      return true;
    } catch (error) {
      return { error };
    } finally {
      if (entry.child === child) {
        entry.unlisten?.();
        entry.unlisten = undefined;
        entry.child = undefined;
      }
      entry.state = 'stopped';
    }
  }
}

function option(options: SupervisorOptions, key: 'maxRestarts' | 'maxSeconds' | 'coolDownMs' | 'coolDownMaxMs', fallback: number, min: number): number {
  const value = options[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new StagecoachError('supervisor.invalid-options', `Expected \`${key}\` to be a number >= ${min}, got ${String(value)}`);
  }
  return value;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
