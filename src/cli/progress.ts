import type { Pipeline } from '../pipeline/topology.js';

/** A one-line progress display for `backfill --once` on a terminal (stderr). */
export class Progress {
  private timer: NodeJS.Timeout | null = null;
  private done = 0;
  private bytes = 0;
  private failed = 0;
  private readonly started = Date.now();
  private readonly off: Array<() => void> = [];

  constructor(
    private readonly pipeline: Pipeline,
    private readonly out: NodeJS.WriteStream,
  ) {}

  start(): void {
    this.off.push(
      this.pipeline.bus.on('upload.stop', ({ bytes }) => {
        this.done++;
        this.bytes += bytes;
      }),
      this.pipeline.bus.on('upload.exception', () => {
        this.failed++;
      }),
    );
    this.timer = setInterval(() => void this.render(), 250);
  }

  private async render(): Promise<void> {
    const counts = await this.pipeline.store.counts();
    const left = counts.reduce((a, c) => a + c.pending + c.inFlight, 0) + this.pipeline.watcher.backlog;
    const total = this.done + this.failed + left;
    const width = 30;
    const fill = total === 0 ? width : Math.round((width * (this.done + this.failed)) / total);
    const secs = (Date.now() - this.started) / 1000;
    const mib = this.bytes / 1024 ** 2;
    this.out.write(
      `\r[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${this.done}/${total} deliveries, ${this.failed} failed, ${mib.toFixed(1)} MiB, ${(mib / Math.max(secs, 0.001)).toFixed(1)} MiB/s   `,
    );
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    for (const f of this.off) f();
    this.out.write('\n');
  }
}
