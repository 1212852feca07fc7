import os from 'node:os';
import type { Logger } from 'pino';
import type { PathFilter } from '../archive/filters.js';
import type { FileItem } from '../archive/item.js';
import { renderRemotePath } from '../archive/remote-path.js';
import { ProducerConsumer } from '../stage/index.js';
import type { SubId } from '../stage/dispatcher.js';
import type { Delivery, NewItem, Store } from '../state/store.js';
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
  private readonly host: string;
  /** Files handled so far (journaled or skipped). */
  handled = 0;

  constructor(private readonly opts: ArchiverOptions) {
    const durable = new DurableBroadcastDispatcher<Delivery>();
    super({ name: 'archiver', dispatcher: durable });
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
   * one lease per target runs at a time; a request that arrives meanwhile runs once it is done.
   */
  private refill(target: string): void {
    if (this.due.has(target)) return;
    this.due.add(target);
    setImmediate(() => {
      this.due.delete(target);
      this.leaseFor(target);
    });
  }

  private leaseFor(target: string): void {
    if (this.leasing.has(target)) {
      this.again.add(target);
      return;
    }
    this.leasing.add(target);
    void (async () => {
      try {
        for (;;) {
          const n = this.durable.demandOf(target);
          if (n <= 0) break;
          const leased = await this.opts.store.lease(target, n);
          if (leased.length > 0) this.emit(leased);
          const orphans = this.durable.takeOrphans();
          for (const o of orphans) await this.opts.store.release(o.id, null);
          if (leased.length < n) break;
        }
      } catch (e) {
        this.opts.log.error({ err: e, target }, 'cannot lease deliveries');
      } finally {
        this.leasing.delete(target);
        if (this.again.delete(target)) this.leaseFor(target);
      }
    })();
  }
}
