/** Shared pieces of the OneDrive target tests: files on disk, requests that remember their resume handle. */
import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import type { PutRequest } from '../../../src/targets/target.js';
import type { LoggedRequest } from '../../emulators/harness/index.js';
import { seededBytes } from '../../conformance/sources.js';

/** Where a put's resume handle lives between attempts (the store, in the daemon). */
export class ResumeStore {
  handle: string | null = null;
  readonly history: Array<string | null> = [];
  save = async (h: string | null): Promise<void> => {
    this.handle = h;
    this.history.push(h);
  };
}

/** Writes `size` seeded bytes to `dir/name`; returns the path and the bytes. */
export async function seededFile(dir: string, name: string, seed: number, size: number): Promise<{ file: string; bytes: Buffer }> {
  const file = path.join(dir, name);
  const bytes = seededBytes(seed, size);
  await writeFile(file, bytes);
  return { file, bytes };
}

export interface FileRequestOptions {
  store?: ResumeStore;
  signal?: AbortSignal;
  /**
   * Calls `cut` (a daemon killed mid-upload) at the first pull from the file after `when()` holds:
   * after a chunk handed over, the target asking for the next.
   */
  cutAfter?: { when: () => boolean; cut: () => void };
  /** Counts every byte pulled from the file, over all opens. */
  pulled?: { bytes: number; opens: number[] };
}

/** A PutRequest reading `file` from disk (`open(start)` honoured), with its resume handle in `store`. */
export function fileRequest(remotePath: string, file: string, size: number, opts: FileRequestOptions = {}): PutRequest {
  const store = opts.store ?? new ResumeStore();
  const req: PutRequest = {
    remotePath,
    size,
    mtimeMs: Date.UTC(2024, 0, 2, 3, 4, 5),
    open(start = 0) {
      opts.pulled?.opens.push(start);
      const src = createReadStream(file, { start, highWaterMark: 256 * 1024 });
      if (!opts.cutAfter && !opts.pulled) return src;
      let cut = false;
      return Readable.from(
        (async function* () {
          for await (const chunk of src) {
            const b = chunk as Buffer;
            if (opts.pulled) opts.pulled.bytes += b.length;
            yield b;
            if (opts.cutAfter && !cut && opts.cutAfter.when()) {
              cut = true;
              opts.cutAfter.cut();
            }
          }
        })(),
        { objectMode: false },
      );
    },
    resume: store.handle,
    saveResume: store.save,
  };
  if (opts.signal) req.signal = opts.signal;
  return req;
}

/** Fragment PUTs to the upload host in `log` (from `since` on), with their ranges. */
export function fragmentPuts(log: LoggedRequest[], since = 0): LoggedRequest[] {
  return log.slice(since).filter((r) => r.method === 'PUT' && /^\/(rup|up|upload)\//.test(r.url));
}

/** The start byte of a `Content-Range: bytes a-b/n`. */
export function rangeStart(r: LoggedRequest): number {
  const m = /^bytes (\d+)-/.exec(r.contentRange ?? '');
  if (!m) throw new Error(`no range in ${r.contentRange}`);
  return Number(m[1]);
}

/** A pino destination that keeps every line. */
export function memoryLog(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  return { stream, lines };
}
