/** Shared helpers of the Dropbox target tests: a target on an emulator, requests with a resume store. */
import type { PutRequest, Target } from '../../../src/targets/target.js';
import type { DropboxInternals } from '../../../src/targets/dropbox/api-types.js';
import { dropboxHarness, type DropboxHarness, type DropboxHarnessOptions } from '../../conformance/dropbox-harness.js';
import { request, type RequestOptions } from '../../conformance/sources.js';
import type { LoggedRequest } from '../../emulators/harness/index.js';

export const MiB = 1024 * 1024;
/** The chunk size (and simple-upload limit) of these tests: Dropbox's smallest legal chunk. */
export const CHUNK = 4 * MiB;
export const SMALL: DropboxInternals = { chunkSize: CHUNK, simpleUploadMax: CHUNK };

/** A harness whose target uses 4 MiB chunks and a 4 MiB simple-upload limit. */
export function smallChunkHarness(opts: DropboxHarnessOptions = {}): Promise<DropboxHarness> {
  return dropboxHarness({ internals: SMALL, ...opts });
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

/** A PutRequest whose resume handle lives in `store`, counting its `open` calls. */
export function put(
  path: string,
  bytes: Buffer,
  store: ResumeStore = resumeStore(),
  opts: RequestOptions & { onSave?: (handle: string | null, n: number) => void } = {},
): PutRequest & { opens: number[] } {
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
      opts.onSave?.(h, store.saved.length);
    },
  };
}

/** The put's rejection (fails the test if it resolves). */
export async function rejectionOf(target: Target, req: PutRequest): Promise<unknown> {
  try {
    const res = await target.put(req);
    throw new Error(`expected the put to fail, it resolved: ${JSON.stringify(res)}`);
  } catch (err) {
    return err;
  }
}

/** Upload requests (start/append/finish/upload) in the emulator's log. */
export function uploads(h: DropboxHarness): LoggedRequest[] {
  return h.emu.server.requests(/\/2\/files\/upload(_session\/(start|append_v2|finish))?$/);
}

/** Token-endpoint requests in the emulator's log. */
export function tokenCalls(h: DropboxHarness): LoggedRequest[] {
  return h.emu.server.requests(/\/oauth2\/token/);
}

/** The body bytes of every upload request Dropbox answered 200. */
export function acceptedBytes(h: DropboxHarness): number {
  return uploads(h)
    .filter((r) => r.status === 200)
    .reduce((n, r) => n + r.bodyBytes, 0);
}

/** Every message of an error and its causes, joined. */
export function messages(err: unknown): string {
  const out: string[] = [];
  for (let e = err, i = 0; e && i < 8; i++) {
    out.push(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
    e = (e as { cause?: unknown }).cause;
  }
  return out.join(' <- ');
}
