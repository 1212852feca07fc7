/** Shared helpers of the Drive target tests: a target on an emulator, requests with a resume store. */
import { Writable } from 'node:stream';
import { inspect } from 'node:util';
import pino from 'pino';
import { createGdriveTarget } from '../../../src/targets/gdrive/index.js';
import type { GdriveInternals, GdriveOptions } from '../../../src/targets/gdrive/api-types.js';
import type { FleetLocks, PutRequest, Target } from '../../../src/targets/target.js';
import { gdriveOptions } from '../../conformance/gdrive-harness.js';
import { chunkStream, request, type RequestOptions } from '../../conformance/sources.js';
import type { GdriveEmulator } from '../../emulators/gdrive/index.js';

export const KiB = 1024;
/** The chunk size the tests use: Google's granularity, so a few hundred KiB is several chunks. */
export const CHUNK = 256 * KiB;

export interface TestTarget {
  target: Target;
  options: GdriveOptions;
  /** Every log line the target wrote (JSON, debug level and up). */
  logs: string[];
}

/** A Drive target on `emu`: small chunks (256 KiB) and a 256 KiB simple-upload limit by default. */
export function makeTarget(emu: GdriveEmulator, internals: GdriveInternals = {}, extra: Partial<GdriveOptions> = {}, locks?: FleetLocks): TestTarget {
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString('utf8'));
      cb();
    },
  });
  const options = gdriveOptions(emu, extra);
  const target = createGdriveTarget(options, { log: pino({ level: 'debug' }, sink), stateDir: '/nonexistent-state', ...(locks ? { locks } : {}) }, { chunkSize: CHUNK, simpleUploadMax: CHUNK, ...internals });
  return { target, options, logs };
}

/** A resume store for one delivery, as the journal keeps it. */
export interface ResumeStore {
  handle: string | null;
  /** Every value `saveResume` was called with, in order. */
  saved: Array<string | null>;
}

export function resumeStore(initial: string | null = null): ResumeStore {
  return { handle: initial, saved: [] };
}

/** A PutRequest whose resume handle lives in `store`, and that counts its `open` calls. */
export function put(path: string, bytes: Buffer, store: ResumeStore = resumeStore(), opts: RequestOptions = {}): PutRequest & { opens: number[] } {
  const base = request(path, bytes, opts);
  const opens: number[] = [];
  return {
    ...base,
    opens,
    open: (start?: number) => {
      opens.push(start ?? 0);
      return base.open(start);
    },
    resume: store.handle,
    saveResume: async (h) => {
      store.handle = h;
      store.saved.push(h);
    },
  };
}

function* pieces(buf: Buffer, size = 64 * KiB): Generator<Buffer> {
  for (let off = 0; off < buf.length; off += size) yield buf.subarray(off, Math.min(buf.length, off + size));
}

/**
 * open() for a source that calls `onCross` once more than `afterBytes` bytes have been read,
 * just before handing over the piece that crosses it.
 */
export function crossingSource(buf: Buffer, afterBytes: number, onCross: () => void) {
  return (start = 0) =>
    chunkStream(function* () {
      let read = start;
      let fired = false;
      for (const p of pieces(buf.subarray(start))) {
        read += p.length;
        if (!fired && read > afterBytes) {
          fired = true;
          onCross();
        }
        yield p;
      }
    });
}

/** Chunk PUTs of resumable sessions the emulator has answered (logged as the answer goes out: before the target has it). */
export function answeredChunks(emu: GdriveEmulator): number {
  return emu.server.requests(/upload_id=/).filter((r) => r.method === 'PUT' && r.status !== 0).length;
}

/**
 * open() for a source that calls `onAnswered` at its first read after the emulator answered `n`
 * chunk PUTs. A resumable upload reads the source a chunk ahead of what it sends (ReadAhead), so
 * a byte count is no point in the upload; this read comes after the n-th answer and before the
 * next chunk is sent (the target sends it once it took that chunk, which starts this read).
 */
export function answeredSource(buf: Buffer, emu: GdriveEmulator, n: number, onAnswered: () => void) {
  return (start = 0) =>
    chunkStream(function* () {
      let fired = false;
      for (const p of pieces(buf.subarray(start))) {
        if (!fired && answeredChunks(emu) >= n) {
          fired = true;
          onAnswered();
        }
        yield p;
      }
    });
}

export { rejected } from '../../helpers/rejection.js';

/** Every message in an error's cause chain, and each error inspected deeply (what a logger could print). */
export function errorText(err: unknown): string {
  const out: string[] = [];
  for (let e = err, i = 0; e !== null && e !== undefined && i < 8; i++) {
    out.push(e instanceof Error ? e.message : String(e), inspect(e, { depth: 8, showHidden: false }));
    e = (e as { cause?: unknown }).cause;
  }
  return out.join('\n');
}

