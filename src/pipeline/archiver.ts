import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { PathFilter } from '../archive/filters.js';
import type { FileItem } from '../archive/item.js';
import { renderRemotePath } from '../archive/remote-path.js';
import { StagecoachError } from '../errors.js';
import { ProducerConsumer } from '../stage/index.js';
import type { SubId } from '../stage/dispatcher.js';
import type { Delivery, LeaseClaims, NewItem, Store } from '../state/store.js';
import type { Emitter } from '../telemetry/bus.js';
import type { PipelineEvents } from '../telemetry/events.js';
import { DurableBroadcastDispatcher } from './durable-broadcast.js';

export interface ArchiverOptions {
  store: Store;
  /** Every configured target id: each file gets one delivery per target. */
  targets: readonly string[];
  template: string;
  filters: ReadonlyMap<string, PathFilter>;
  log: Logger;
  bus?: Emitter<PipelineEvents>;
  host?: string;
  /**
   * Also lease for every target with unmet demand this often: on a journal shared by several
   * daemons, work recorded by another daemon, or left by a dead one, comes with no local signal.
   */
  pollMs?: number;
  /**
   * How many deliveries past its demand to lease for a target in the same transaction, held here
   * and handed out as its uploads free their slots (default 0: none).
   */
  leaseAhead?: (target: string) => number;
  /** Told each lease's deliveries (those sent and those held ahead), as soon as they are leased. */
  onLeased?: (target: string, deliveries: readonly Delivery[]) => void;
  /** How a lease claims the remote paths of a target's deliveries with it (see Store.lease); absent: the uploaders claim them. */
  leaseClaims?: (target: string) => LeaseClaims | undefined;
  /** The longest a stop waits for what was held to go back to pending (default 5000 ms). */
  releaseWaitMs?: number;
}

/**
 * The producer-consumer between the watcher and the uploaders. For each batch of stable files it
 * applies the filters and the remote path template, then journals one delivery per target in a
 * single transaction before anything is sent. Uploaders are served from the journal through the
 * durable broadcast: each target's pending deliveries are leased under that target's own demand.
 */
export class Archiver extends ProducerConsumer<FileItem, Delivery> {
  private readonly durable: DurableBroadcastDispatcher<Delivery>;
  private readonly leasing = new Set<string>();
  private readonly again = new Set<string>();
  private readonly due = new Set<string>();
  /** Releases of deliveries leased ahead, under way (see releaseHeld). */
  private readonly releasing = new Set<Promise<void>>();
  private readonly host: string;
  private poll: NodeJS.Timeout | undefined;
  /** Files handled so far (journaled or skipped). */
  handled = 0;

  constructor(private readonly opts: ArchiverOptions) {
    let release: (held: Delivery[]) => void = () => undefined;
    const durable = new DurableBroadcastDispatcher<Delivery>((held) => release(held));
    super({ name: 'archiver', dispatcher: durable });
    release = (held) => this.releaseHeld(held);
    this.durable = durable;
    this.host = opts.host ?? os.hostname();
  }

  protected override async handleEvents(items: FileItem[]): Promise<Delivery[]> {
    const batch: NewItem[] = [];
    for (const item of items) {
      const filter = this.opts.filters.get(item.root);
      const reason = filter?.check(item.relPath, item.size) ?? null;
      if (reason) {
        this.opts.log.debug({ root: item.root, relPath: item.relPath, reason }, 'skipped by filters');
        this.opts.bus?.emit('item.skip', { root: item.root, relPath: item.relPath, reason });
        continue;
      }
      if (item.rawRelPath) {
        this.opts.log.info(
          { root: item.root, relPath: item.relPath, rawRelPathHex: item.rawRelPath.toString('hex') },
          'a name is not valid UTF-8: archived under its escaped name (the journal keeps the original bytes)',
        );
      }
      try {
        batch.push({ item, remotePath: renderRemotePath(this.opts.template, { ...item, host: this.host }) });
      } catch (e) {
        this.opts.log.warn({ root: item.root, relPath: item.relPath, err: e }, 'cannot archive: unsafe remote path');
        this.opts.bus?.emit('item.skip', { root: item.root, relPath: item.relPath, reason: (e as Error).message });
      }
    }
    if (batch.length > 0) {
      const touched = await this.opts.store.recordItems(batch, this.opts.targets);
      for (const b of batch) this.opts.bus?.emit('item.record', { root: b.item.root, relPath: b.item.relPath, targets: this.opts.targets.length });
      for (const t of touched) this.refill(t);
    }
    this.handled += items.length;
    return [];
  }

  protected override init(): void {
    if (this.opts.pollMs !== undefined) {
      this.poll = setInterval(() => {
        for (const target of this.durable.hungry()) this.refill(target);
      }, this.opts.pollMs);
      this.poll.unref();
    }
  }

  protected override async terminate(): Promise<void> {
    if (this.poll !== undefined) clearInterval(this.poll);
    if (this.releasing.size === 0) return;
    // A journal that cannot be reached (calls to PostgreSQL wait for it) must not hold the stop:
    // what is not back to pending by then is the next start's, or its lease expires.
    const waitMs = this.opts.releaseWaitMs ?? 5000;
    const waited = new AbortController();
    const all = Promise.all([...this.releasing]).then(() => true);
    const done = await Promise.race([all, sleep(waitMs, false, { signal: waited.signal }).catch(() => false)]);
    waited.abort();
    if (!done) this.opts.log.warn({ waitedMs: waitMs, left: this.releasing.size }, 'deliveries leased ahead not yet back to pending at the stop: the next start does it, or their leases expire');
  }

  /**
   * Deliveries leased ahead for an uploader that left, back to pending now. SQLite does it within
   * the call, before anything can lease again; on PostgreSQL a release that runs after the
   * successor's start (its resetInFlight) and a new lease of the row finds another lease's token
   * there and changes nothing. One the journal refuses stays in flight until the next start or,
   * on a shared journal, until its lease expires; the log says so.
   */
  private releaseHeld(held: Delivery[]): void {
    for (const d of held) {
      const p = this.opts.store.release(d.id, null).then(
        () => undefined,
        (e: unknown) => this.opts.log.warn({ err: e, target: d.target, id: d.id }, 'cannot put a delivery leased ahead back to pending: the next start does, or its lease expires'),
      );
      this.releasing.add(p);
      void p.finally(() => this.releasing.delete(p));
    }
  }

  protected override handleSubscriberDemand(sub: SubId): void {
    this.refill(sub);
  }

  /** New pending work for a target that did not come through the watcher (retry failed, release). */
  poke(target: string): void {
    this.refill(target);
  }

  /**
   * Leases the target's pending deliveries up to its unmet demand and sends them. The requests of
   * one turn of the event loop make one lease (uploads that settle together ask together), and
   * one lease per target runs at a time; a request that arrives meanwhile runs once it is done. A
   * lease that fails (the journal is busy or broken) is retried after LEASE_RETRY_MS, doubling,
   * while the target still has demand; after LEASE_ATTEMPTS failures in a row the archiver crashes
   * with a `state.lease-failed` error (the pipeline stops with it). Never dropped: demand left
   * unserved would stall an idle target until something else poked it.
   */
  private refill(target: string): void {
    if (this.due.has(target)) return;
    this.due.add(target);
    if (this.due.size > 1) return;
    // One callback for every target due in this turn: their leases' deliveries start together,
    // and the journal claims their remote names in one transaction. On the next turn, not on the
    // tick queue: a lease per answer (and its claims, alone) cost more commits than the turn it
    // saved, measured (~0.6 ms more of the main thread per delivery under the four-cloud bench).
    setImmediate(() => {
      const due = [...this.due];
      this.due.clear();
      for (const t of due) this.leaseFor(t);
    });
  }

  private leaseFor(target: string): void {
    if (this.leasing.has(target)) {
      this.again.add(target);
      return;
    }
    this.leasing.add(target);
    void this.leaseLoop(target)
      // Anything else that throws here is a bug: it crashes the archiver, as in a callback.
      .catch((e: unknown) => this.crash(e))
      .finally(() => {
        this.leasing.delete(target);
        if (this.again.delete(target)) this.leaseFor(target);
      });
  }

  private async leaseLoop(target: string): Promise<void> {
    let failures = 0;
    for (;;) {
      const n = this.durable.demandOf(target);
      if (n <= 0 || this.state === 'crashed' || this.state === 'stopped') return;
      const held = this.durable.takeHeld(target, n);
      if (held.length > 0) {
        this.emit(held);
        continue;
      }
      const ahead = this.opts.leaseAhead?.(target) ?? 0;
      let leased: Delivery[];
      try {
        leased = await this.opts.store.lease(target, n + ahead, this.opts.leaseClaims?.(target));
        failures = 0;
      } catch (e) {
        failures++;
        if (failures >= LEASE_ATTEMPTS) {
          this.crash(new StagecoachError('state.lease-failed', `[stagecoach] [state] cannot lease deliveries for ${target}: ${messageOf(e)}`, { cause: e }));
          return;
        }
        const delayMs = LEASE_RETRY_MS * 2 ** (failures - 1);
        this.opts.log.warn({ err: e, target, attempt: failures, delayMs }, 'cannot lease deliveries; trying again');
        await sleep(delayMs);
        continue;
      }
      if (leased.length > 0) this.opts.onLeased?.(target, leased);
      // What the demand (now, after the await) takes goes out; the rest is held for the next.
      const now = Math.max(0, this.durable.demandOf(target));
      if (leased.length > now) this.durable.hold(target, leased.slice(now));
      if (leased.length > 0 && now > 0) this.emit(leased.slice(0, now));
      const orphans = this.durable.takeOrphans();
      try {
        for (const o of orphans) await this.opts.store.release(o.id, null);
      } catch (e) {
        this.crash(new StagecoachError('state.lease-failed', `[stagecoach] [state] cannot put an orphaned lease back to pending: ${messageOf(e)}`, { cause: e }));
        return;
      }
      if (leased.length < n + ahead) return;
    }
  }
}

/** Lease attempts in a row before the archiver gives up and crashes. */
const LEASE_ATTEMPTS = 5;
/** The wait after the first failed lease; it doubles with each failure (100 ms … 800 ms). */
const LEASE_RETRY_MS = 100;

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
