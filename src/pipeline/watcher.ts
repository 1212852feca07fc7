import type { Logger } from 'pino';
import type { FileItem, FileStat } from '../archive/item.js';
import { Producer } from '../stage/index.js';
import type { Emitter, StageEvents } from '../telemetry/bus.js';
import type { PrewalkSource } from './prewalk.js';
import { type RootSpec, WatchSource } from './watch-source.js';

export interface WatchProducerOptions {
  roots: RootSpec[];
  stableMs: number;
  rescanMs: number;
  index(root: string): Promise<Map<string, FileStat>>;
  log: Logger;
  bus?: Emitter<StageEvents>;
  /** The journal could not be read for a scan (see WatchSourceOptions.onError). */
  onError?(error: unknown): void;
  /** A root went missing or came back (see WatchSourceOptions.onRootState). */
  onRootState?(root: RootSpec, present: boolean): void;
  /** What `source.roots()` reports changed (see WatchSourceOptions.onStatusChange). */
  onStatusChange?(): void;
  /** The roots' first walks on a worker thread (see WatchSourceOptions.prewalk). */
  prewalk?: PrewalkSource;
}

/**
 * The pipeline's producer: emits stable files against demand. Files that became stable while
 * there was no demand wait here, coalesced by path (a file that changes again goes back to
 * waiting for stability; one that vanishes is forgotten).
 */
export class WatchProducer extends Producer<FileItem> {
  private readonly readyItems = new Map<string, FileItem>();
  private flushing: NodeJS.Immediate | null = null;
  /** Files emitted so far (the archiver's `handled` catches up with it when it is idle). */
  emitted = 0;
  readonly source: WatchSource;

  constructor(opts: WatchProducerOptions) {
    super({ name: 'watcher', bus: opts.bus });
    this.source = new WatchSource({
      ...opts,
      onReady: (item) => {
        this.readyItems.set(`${item.root}\u0000${item.relPath}`, item);
        this.flushSoon();
      },
      onUnready: (root, relPath) => {
        this.readyItems.delete(`${root}\u0000${relPath}`);
      },
    });
  }

  /** Files found but not yet emitted: waiting to be stable, or stable and waiting for demand. */
  get backlog(): number {
    return this.readyItems.size + this.source.waiting;
  }

  protected override handleDemand(): void {
    this.flush();
  }

  /**
   * Files become ready one by one (a stat or a watch event each); emitting them once per turn of
   * the event loop hands the archiver batches, so it journals many files in one transaction
   * instead of one transaction per file.
   */
  private flushSoon(): void {
    if (this.flushing) return;
    this.flushing = setImmediate(() => {
      this.flushing = null;
      this.flush();
    });
  }

  private flush(): void {
    let n = this.pendingDemand;
    if (n <= 0 || this.readyItems.size === 0) return;
    const out: FileItem[] = [];
    for (const [key, item] of this.readyItems) {
      if (n-- <= 0) break;
      this.readyItems.delete(key);
      this.source.taken(item.root, item.relPath);
      out.push(item);
    }
    this.emitted += out.length;
    this.emit(out);
  }

  /** Watches the roots; resolves when every root's initial scan is done. */
  watch(): Promise<void> {
    return this.source.watch();
  }

  /** Scans the roots once; resolves when every file found was stable and emitted or waiting here. */
  scanOnce(): Promise<void> {
    return this.source.scanOnce();
  }

  async closeSource(): Promise<void> {
    if (this.flushing) clearImmediate(this.flushing);
    this.flushing = null;
    await this.source.close();
  }
}
