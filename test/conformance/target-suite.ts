/**
 * The conformance suite every target runs (rclone's fstests, BullMQ's shared suites): one list of
 * checks against the Target contract, registered as vitest tests by `targetSuite`, each on a
 * fresh harness from the target's factory. The checks are exported one by one so a test can
 * prove that a broken target fails them (broken.test.ts): a suite that passes everything proves
 * nothing.
 *
 * Every check asserts through `expect(value, message)`; the messages are stable, and the tests
 * of the suite match on them.
 *
 * A target's file (test/conformance/<id>.test.ts) is a few lines:
 * ```ts
 * targetSuite('dropbox', async () => {
 *   const emu = await startDropboxEmulator();
 *   const target = createDropboxTarget({ id: 'dropbox', ...emu.options }, ctx);
 *   return { target, readBack: (p) => emu.read(p), listAll: () => emu.list(),
 *            mapName: dropboxName, cleanup: () => emu.close() };
 * }, { chunkThreshold: 150 * 2 ** 20, largeFileBytes: 50_000_000, caseInsensitive: true });
 * ```
 */
import { describe, expect, test } from 'vitest';
import { ShortReadError } from '../../src/errors.js';
import { hashBuffer } from '../../src/archive/hash.js';
import type { PutRequest, PutResult, Target } from '../../src/targets/target.js';
import {
  DEFAULT_MTIME_MS,
  InjectedSourceError,
  failingSource,
  growingSource,
  pullTriggerSource,
  request,
  seededBytes,
  truncatedSource,
} from './sources.js';

/** What a target's factory gives the suite: the target, and a way to look behind it. */
export interface SuiteHarness {
  target: Target;
  /** The bytes stored at `remotePath` as the target names it (after `mapName`), or null. */
  readBack(remotePath: string): Promise<Buffer | null>;
  /** Every path stored under the target's root, temp and partial files included. */
  listAll(): Promise<string[]>;
  /** Removes what the harness made (temp folders, emulator state). */
  cleanup(): Promise<void>;
  /**
   * The path a remote path is stored under, for targets that map names (forbidden characters,
   * trailing spaces). Default: NFC normalisation only.
   */
  mapName?(remotePath: string): string;
  /** The mtime the target stored for `remotePath`. Required when `caps.mtime` is true. */
  readMtimeMs?(remotePath: string): Promise<number | null>;
}

export type SuiteFactory = () => Promise<SuiteHarness>;

/** What the target declares beyond `features`; every conditional check keys off one of these. */
export interface SuiteCaps {
  /** Files above this size take the chunked path: the suite puts files on both sides of it. */
  chunkThreshold?: number;
  /** Size of the "large file" check. Default 5 MB (clouds pass more to reach their chunked path). */
  largeFileBytes?: number;
  /** The longest name segment the target stores, in UTF-8 bytes. Default 255. */
  maxNameBytes?: number;
  /** Names differing only in case are one file. Default: `features.caseInsensitive`. */
  caseInsensitive?: boolean;
  /** The target stores `req.mtimeMs` (to the second) and the harness can read it back. */
  mtime?: boolean;
  /** A small source offered with `readSync` is read through it, never through `open`. */
  readSync?: boolean;
}

export interface ResolvedCaps {
  chunkThreshold: number | undefined;
  largeFileBytes: number;
  maxNameBytes: number;
  caseInsensitive: boolean | undefined;
  mtime: boolean;
  readSync: boolean;
}

/** What each check gets. */
export interface CheckContext {
  h: SuiteHarness;
  target: Target;
  caps: ResolvedCaps;
  mapName(remotePath: string): string;
}

export type Check = (ctx: CheckContext) => Promise<void>;

const KINDS = ['retry', 'fail-item', 'fatal'];

function resolveCaps(caps: SuiteCaps): ResolvedCaps {
  return {
    chunkThreshold: caps.chunkThreshold,
    largeFileBytes: caps.largeFileBytes ?? 5_000_000,
    maxNameBytes: caps.maxNameBytes ?? 255,
    caseInsensitive: caps.caseInsensitive,
    mtime: caps.mtime ?? false,
    readSync: caps.readSync ?? false,
  };
}

function contextFor(h: SuiteHarness, caps: SuiteCaps): CheckContext {
  const mapName = h.mapName ? (p: string) => h.mapName!(p) : (p: string) => p.normalize('NFC');
  return { h, target: h.target, caps: resolveCaps(caps), mapName };
}

async function rejection(target: Target, req: PutRequest, what: string): Promise<unknown> {
  let result: PutResult | undefined;
  let error: unknown;
  try {
    result = await target.put(req);
  } catch (err) {
    error = err ?? new Error('rejected with nothing');
  }
  expect(result, `put of ${what} must reject`).toBeUndefined();
  expect(KINDS, `classify() of the error from ${what} must give a kind`).toContain(target.classify(error).kind);
  return error;
}

function causes(err: unknown): unknown[] {
  const out: unknown[] = [];
  for (let e = err, i = 0; e !== undefined && e !== null && i < 8; i++) {
    out.push(e);
    e = (e as { cause?: unknown }).cause;
  }
  return out;
}

/** Entries of listAll() under `prefix/`, sorted. */
async function under(ctx: CheckContext, prefix: string): Promise<string[]> {
  const p = `${ctx.mapName(prefix)}/`;
  return (await ctx.h.listAll()).filter((x) => x.startsWith(p)).sort();
}

/** Puts `bytes` and checks everything a successful write promises. */
async function putAndVerify(ctx: CheckContext, remotePath: string, bytes: Buffer, mtimeMs?: number): Promise<PutResult> {
  const { target } = ctx;
  const res = await target.put(request(remotePath, bytes, mtimeMs === undefined ? {} : { mtimeMs }));
  const kind = target.features.hashKind;
  expect(res.hashKind, 'result hashKind equals features.hashKind').toBe(kind);
  expect(res.size, 'result size equals the bytes put').toBe(bytes.length);
  expect(res.hash, `result hash equals the ${kind} of the bytes put`).toBe(hashBuffer(kind, bytes));
  expect(typeof res.remoteId === 'string' && res.remoteId.length > 0, 'result has a remoteId').toBe(true);
  const back = await ctx.h.readBack(ctx.mapName(remotePath));
  expect(back, `read-back of ${remotePath} exists`).not.toBeNull();
  expect(back!.length, `read-back of ${remotePath} has the size put`).toBe(bytes.length);
  expect(back!.equals(bytes), `read-back of ${remotePath} is byte-identical`).toBe(true);
  return res;
}

function nameOfBytes(n: number, unit: string, tail: string): string {
  const unitBytes = Buffer.byteLength(unit, 'utf8');
  const body = unit.repeat(Math.floor((n - Buffer.byteLength(tail)) / unitBytes));
  const fill = 'x'.repeat(n - Buffer.byteLength(body + tail, 'utf8'));
  return `${body}${fill}${tail}`;
}

/** Names every target must store (mapped through `mapName` where the provider forbids them). */
export const HOSTILE_NAMES: readonly string[] = [
  'Ünïcödé 日本語 🚀.bin',
  ' leading space.txt',
  'trailing space .txt',
  'trailing space.txt ',
  ' spaced folder /inner file.txt',
  'question?.txt',
  'less<than.txt',
  'greater>than.txt',
  'double"quote.txt',
  "single'quote.txt",
  'colon:name.txt',
  'all ?<>"\': of them.txt',
];

async function expectNoChange(ctx: CheckContext, prefix: string, path: string, old: Buffer | null, what: string): Promise<void> {
  const back = await ctx.h.readBack(ctx.mapName(path));
  if (old === null) expect(back, `after ${what}: nothing stored at ${path}`).toBeNull();
  else expect(back !== null && back.equals(old), `after ${what}: the previous content of ${path} is intact`).toBe(true);
  expect(await under(ctx, prefix), `after ${what}: no temp or partial files are left`).toEqual(
    old === null ? [] : [ctx.mapName(path)],
  );
}

/** A failing put of `what`, first onto nothing, then over an existing copy. */
async function failsCleanly(
  ctx: CheckContext,
  prefix: string,
  what: string,
  makeReq: (path: string, bytes: Buffer) => PutRequest,
  onError?: (err: unknown) => void,
): Promise<void> {
  const fresh = `${prefix}/fresh.bin`;
  const bytes = seededBytes(11, 300_000);
  const err1 = await rejection(ctx.target, makeReq(fresh, bytes), what);
  onError?.(err1);
  await expectNoChange(ctx, prefix, fresh, null, what);

  const existing = `${prefix}/existing.bin`;
  const old = seededBytes(12, 300_000);
  await putAndVerify(ctx, existing, old);
  const err2 = await rejection(ctx.target, makeReq(existing, bytes), `${what} over an existing copy`);
  onError?.(err2);
  await expectNoChange(ctx, prefix, existing, old, `${what} over an existing copy`);
}

function expectShortRead(target: Target, err: unknown, what: string): void {
  expect(
    causes(err).some((e) => e instanceof ShortReadError),
    `${what}: the error (or its cause) is a ShortReadError`,
  ).toBe(true);
  expect(target.classify(err).kind, `${what}: classify() gives fail-item`).toBe('fail-item');
}

/** Every check of the suite, by test title. */
export const checks = {
  async 'small file: stored byte-identical, hash and size reported, stat agrees'(ctx: CheckContext) {
    const bytes = seededBytes(1, 10_000);
    const res = await putAndVerify(ctx, 'small/file.bin', bytes);
    expect(res.unchanged, 'a first put is not unchanged').toBe(false);
    expect(res.bytesSent, 'a first put sends every byte').toBe(bytes.length);
    const st = await ctx.target.stat('small/file.bin');
    expect(st, 'stat finds the stored file').not.toBeNull();
    expect(st!.size, 'stat size equals the bytes put').toBe(bytes.length);
    if (st!.hash !== null) expect(st!.hash, 'stat hash equals the hash of the bytes put').toBe(res.hash);
    expect(await ctx.target.stat('small/missing.bin'), 'stat of a missing file is null').toBeNull();
  },

  async 'empty file (0 bytes)'(ctx: CheckContext) {
    const res = await putAndVerify(ctx, 'empty/zero.bin', Buffer.alloc(0));
    expect(res.unchanged, 'a first put is not unchanged').toBe(false);
    expect(await under(ctx, 'empty'), 'the empty file is listed').toEqual([ctx.mapName('empty/zero.bin')]);
  },

  async 'large file (multi-MB)'(ctx: CheckContext) {
    // An odd size, so the last chunk of any chunked protocol is a short one.
    const bytes = seededBytes(2, ctx.caps.largeFileBytes + 7);
    const res = await putAndVerify(ctx, 'large/big.bin', bytes);
    expect(res.bytesSent, 'a first put sends every byte').toBe(bytes.length);
  },

  async 'files on both sides of the chunk threshold'(ctx: CheckContext) {
    const t = ctx.caps.chunkThreshold;
    expect(t, 'caps.chunkThreshold is set').toBeTypeOf('number');
    for (const size of [t!, t! + 1]) await putAndVerify(ctx, `threshold/${size}.bin`, seededBytes(size, size));
  },

  async 'nested folders are created, ensureFolder is idempotent'(ctx: CheckContext) {
    await putAndVerify(ctx, 'nested/a/b/c/d/deep.bin', seededBytes(3, 2048));
    await ctx.target.ensureFolder('nested/e/f/g');
    await ctx.target.ensureFolder('nested/e/f/g');
    await putAndVerify(ctx, 'nested/e/f/g/in-made-folder.bin', seededBytes(4, 100));
    expect(await under(ctx, 'nested'), 'exactly the two files are stored').toEqual(
      [ctx.mapName('nested/a/b/c/d/deep.bin'), ctx.mapName('nested/e/f/g/in-made-folder.bin')].sort(),
    );
  },

  async 'NFC and NFD spellings of a name are one file, stored as NFC'(ctx: CheckContext) {
    const nfd = 'unicode/Cafe\u0301 Zu\u0308rich.txt';
    const nfc = nfd.normalize('NFC');
    expect(nfc, 'test data: the two spellings differ').not.toBe(nfd);
    await ctx.target.put(request(nfd, seededBytes(5, 500)));
    const second = seededBytes(6, 700);
    await putAndVerify(ctx, nfc, second);
    expect(await under(ctx, 'unicode'), 'one file, under its NFC name').toEqual([ctx.mapName(nfc)]);
    const st = await ctx.target.stat(nfd);
    expect(st?.size, 'stat by the NFD spelling finds the NFC file').toBe(second.length);
  },

  async 'hostile names are stored and read back'(ctx: CheckContext) {
    const paths = HOSTILE_NAMES.map((n) => `hostile/${n}`);
    let seed = 100;
    for (const p of paths) await putAndVerify(ctx, p, seededBytes(seed++, 333));
    expect(await under(ctx, 'hostile'), 'every hostile name is stored once').toEqual(paths.map((p) => ctx.mapName(p)).sort());
  },

  async 'names of exactly the byte limit are stored'(ctx: CheckContext) {
    const n = ctx.caps.maxNameBytes;
    const ascii = nameOfBytes(n, 'a', '.bin');
    const wide = nameOfBytes(n, '日', '.bin');
    expect(Buffer.byteLength(ascii), 'test data: ascii name size').toBe(n);
    expect(Buffer.byteLength(wide), 'test data: wide name size').toBe(n);
    await putAndVerify(ctx, `limit/${ascii}`, seededBytes(7, 100));
    await putAndVerify(ctx, `limit/${wide}`, seededBytes(8, 100));
  },

  async 'a name over the byte limit fails the item and stores nothing'(ctx: CheckContext) {
    const name = nameOfBytes(ctx.caps.maxNameBytes + 1, 'a', '.bin');
    const err = await rejection(ctx.target, request(`toolong/${name}`, seededBytes(9, 100)), 'an over-long name');
    expect(ctx.target.classify(err).kind, 'an over-long name is fail-item').toBe('fail-item');
    expect(await under(ctx, 'toolong'), 'nothing stored for an over-long name').toEqual([]);
  },

  async 'overwrite with different content: the new content is stored'(ctx: CheckContext) {
    const path = 'overwrite/file.bin';
    await putAndVerify(ctx, path, seededBytes(20, 3000));
    const b = seededBytes(21, 5000);
    const r2 = await putAndVerify(ctx, path, b);
    expect(r2.unchanged, 'an overwrite with new content is not unchanged').toBe(false);
    // Same size, different bytes: a size-only identity check would keep the old content.
    const c = seededBytes(22, 5000);
    const r3 = await putAndVerify(ctx, path, c);
    expect(r3.unchanged, 'a same-size overwrite with new content is not unchanged').toBe(false);
    expect(r3.bytesSent, 'a same-size overwrite sends every byte').toBe(c.length);
    expect(await under(ctx, 'overwrite'), 'one file after overwrites').toEqual([ctx.mapName(path)]);
  },

  async 'idempotent re-put: unchanged, nothing sent, content kept'(ctx: CheckContext) {
    const path = 'idem/file.bin';
    const bytes = seededBytes(30, 40_000);
    const first = await putAndVerify(ctx, path, bytes);
    const again = await ctx.target.put(request(path, bytes, { mtimeMs: DEFAULT_MTIME_MS + 60_000 }));
    expect(again.unchanged, 're-put of identical content is unchanged').toBe(true);
    expect(again.bytesSent, 're-put of identical content sends 0 bytes').toBe(0);
    expect(again.hash, 're-put reports the same hash').toBe(first.hash);
    expect(again.size, 're-put reports the size').toBe(bytes.length);
    const back = await ctx.h.readBack(ctx.mapName(path));
    expect(back?.equals(bytes), 'content unchanged after re-put').toBe(true);
    expect(await under(ctx, 'idem'), 'one file after a re-put').toEqual([ctx.mapName(path)]);
  },

  async 'a source that errors mid-stream leaves nothing half-written'(ctx: CheckContext) {
    await failsCleanly(ctx, 'midstream', 'a source failing mid-stream', (p, b) =>
      request(p, b, { open: failingSource(b, 200_000) }),
      (err) => expect(causes(err).some((e) => e instanceof InjectedSourceError || (e as Error)?.message?.includes('injected')),
        'the source error is carried as the error or its cause').toBe(true),
    );
  },

  async 'a source that ends early fails with ShortReadError and leaves nothing'(ctx: CheckContext) {
    await failsCleanly(ctx, 'short', 'a source ending early', (p, b) =>
      request(p, b, { open: truncatedSource(b, b.length - 1000) }),
      (err) => expectShortRead(ctx.target, err, 'a source ending early'),
    );
  },

  async 'a source longer than stated fails with ShortReadError and leaves nothing'(ctx: CheckContext) {
    await failsCleanly(ctx, 'long', 'a source longer than stated', (p, b) =>
      request(p, b, { open: growingSource(b, 1000) }),
      (err) => expectShortRead(ctx.target, err, 'a source longer than stated'),
    );
  },

  async 'an aborted put leaves nothing'(ctx: CheckContext) {
    await failsCleanly(
      ctx,
      'abort',
      'an aborted put',
      (p, b) => {
        const ac = new AbortController();
        return request(p, b, { signal: ac.signal, open: pullTriggerSource(b, () => ac.abort()) });
      },
      // An abort is a shutdown or a cancel, not a verdict on the file: the delivery stays pending.
      (err) => expect(ctx.target.classify(err).kind, 'an aborted put is classified retry').toBe('retry'),
    );
    const ac = new AbortController();
    ac.abort();
    await rejection(ctx.target, request('abort/pre.bin', seededBytes(13, 10), { signal: ac.signal }), 'a put aborted before it began');
    expect(await ctx.h.readBack(ctx.mapName('abort/pre.bin')), 'nothing stored by a put aborted before it began').toBeNull();
  },

  async 'concurrent puts into one new folder all land'(ctx: CheckContext) {
    const files = Array.from({ length: 8 }, (_, i) => ({ path: `concurrent/new/deeper/f${i}.bin`, bytes: seededBytes(40 + i, 20_000 + i) }));
    await Promise.all(files.map((f) => ctx.target.put(request(f.path, f.bytes))));
    for (const f of files) {
      const back = await ctx.h.readBack(ctx.mapName(f.path));
      expect(back?.equals(f.bytes), `concurrent put of ${f.path} landed intact`).toBe(true);
    }
    expect(await under(ctx, 'concurrent'), 'exactly the concurrent files are stored').toEqual(files.map((f) => ctx.mapName(f.path)).sort());
  },

  async 'names differing in case follow features.caseInsensitive'(ctx: CheckContext) {
    const insensitive = ctx.caps.caseInsensitive ?? ctx.target.features.caseInsensitive;
    expect(insensitive, 'caps.caseInsensitive agrees with features').toBe(ctx.target.features.caseInsensitive);
    const a = seededBytes(50, 400);
    const b = seededBytes(51, 600);
    await ctx.target.put(request('case/Mixed.txt', a));
    await ctx.target.put(request('case/mIXED.txt', b));
    const listed = await under(ctx, 'case');
    if (insensitive) {
      expect(listed.length, 'case-insensitive: one file').toBe(1);
      const back = await ctx.h.readBack(listed[0]!);
      expect(back?.equals(b), 'case-insensitive: the second put wins').toBe(true);
    } else {
      expect(listed, 'case-sensitive: two files').toEqual([ctx.mapName('case/Mixed.txt'), ctx.mapName('case/mIXED.txt')].sort());
      expect((await ctx.h.readBack(ctx.mapName('case/Mixed.txt')))?.equals(a), 'case-sensitive: first kept').toBe(true);
    }
  },

  async 'the stored mtime is the source mtime'(ctx: CheckContext) {
    expect(ctx.h.readMtimeMs, 'caps.mtime needs harness.readMtimeMs').toBeTypeOf('function');
    const mtimeMs = Date.UTC(2021, 0, 2, 3, 4, 5);
    await putAndVerify(ctx, 'mtime/file.bin', seededBytes(60, 100), mtimeMs);
    const stored = await ctx.h.readMtimeMs!(ctx.mapName('mtime/file.bin'));
    expect(Math.abs((stored ?? 0) - mtimeMs) < 1000, `stored mtime ${stored} is ${mtimeMs} to the second`).toBe(true);
  },

  async 'a small source offered with readSync is read once through it, never opened as a stream'(ctx: CheckContext) {
    const { target } = ctx;
    // The source as the pipeline offers a small file (src/pipeline/deliver.ts): `open` stays
    // for the target that wants a stream; every byte handed out by readSync is counted.
    const offer = (remotePath: string, size: number, actual: Buffer): { req: PutRequest; read: () => number } => {
      let read = 0;
      const req: PutRequest = {
        ...request(remotePath, actual, { size }),
        open: () => {
          throw new Error(`open() called for ${remotePath}: readSync was offered`);
        },
        readSync: (buf, off, len, pos) => {
          const n = actual.copy(buf, off, pos, Math.min(actual.length, pos + len));
          read += n;
          return n;
        },
      };
      return { req, read: () => read };
    };
    const body = seededBytes(80, 5000);
    const first = offer('sync/a.bin', body.length, body);
    const res = await target.put(first.req);
    expect(res.size, 'result size equals the bytes put').toBe(body.length);
    expect(res.hash, 'result hash equals the hash of the bytes put').toBe(hashBuffer(target.features.hashKind, body));
    expect(first.read(), 'the source is read once, whole, through readSync').toBe(body.length);
    expect((await ctx.h.readBack(ctx.mapName('sync/a.bin')))?.equals(body), 'read-back of sync/a.bin is byte-identical').toBe(true);
    // Over a copy of the same size that differs: a target that compares hashes first reads once still.
    const other = seededBytes(81, 5000);
    const second = offer('sync/a.bin', other.length, other);
    expect((await target.put(second.req)).unchanged, 'a changed file is sent').toBe(false);
    expect(second.read(), 'over a same-size copy, the source is read once, whole').toBe(other.length);
    expect((await ctx.h.readBack(ctx.mapName('sync/a.bin')))?.equals(other), 'the new bytes replace the old').toBe(true);
    // An empty file: one read that returns 0.
    const empty = offer('sync/empty.bin', 0, Buffer.alloc(0));
    expect((await target.put(empty.req)).hash, 'an empty file hashes as no bytes').toBe(hashBuffer(target.features.hashKind, Buffer.alloc(0)));
    expect((await ctx.h.readBack(ctx.mapName('sync/empty.bin')))?.length, 'the empty file is stored empty').toBe(0);
    // A file that grew or shrank since it was checked fails the item and stores nothing.
    for (const [what, actual] of [
      ['grew', Buffer.concat([body, Buffer.from('more')])],
      ['shrank', body.subarray(0, 4000)],
    ] as const) {
      const err = await rejection(target, offer('sync/b.bin', body.length, actual).req, `a small source that ${what}`);
      expect(causes(err).some((e) => e instanceof ShortReadError), `a small source that ${what}: the error is a ShortReadError`).toBe(true);
    }
    expect(await under(ctx, 'sync'), 'only the good files are stored').toEqual([ctx.mapName('sync/a.bin'), ctx.mapName('sync/empty.bin')].sort());
  },
} satisfies Record<string, Check>;

export type CheckName = keyof typeof checks;

/** Checks that apply only when the target declares something. */
const APPLIES: Partial<Record<CheckName, (caps: SuiteCaps) => boolean>> = {
  'files on both sides of the chunk threshold': (caps) => caps.chunkThreshold !== undefined,
  'the stored mtime is the source mtime': (caps) => caps.mtime === true,
  'a small source offered with readSync is read once through it, never opened as a stream': (caps) => caps.readSync === true,
};

/** The checks that apply to a target with `caps`. */
export function applicableChecks(caps: SuiteCaps): CheckName[] {
  return (Object.keys(checks) as CheckName[]).filter((name) => APPLIES[name]?.(caps) ?? true);
}

/** Runs one check on a fresh harness and cleans up, whatever the outcome. */
export async function runCheck(name: CheckName, factory: SuiteFactory, caps: SuiteCaps = {}): Promise<void> {
  const h = await factory();
  try {
    await checks[name](contextFor(h, caps));
  } finally {
    await h.cleanup();
  }
}

/** What `extraTests` gets, to add target-specific tests inside the suite's describe block. */
export interface ExtraTestsContext {
  factory: SuiteFactory;
  caps: SuiteCaps;
}

/**
 * Registers the conformance suite for one target: one vitest test per applicable check, each on
 * a fresh harness from `factory`. A check is left out only when `caps` says it does not apply
 * (no chunked path, no mtime); nothing is skipped at run time.
 */
export function targetSuite(
  name: string,
  factory: SuiteFactory,
  caps: SuiteCaps = {},
  extraTests?: (ctx: ExtraTestsContext) => void,
): void {
  describe(`target conformance: ${name}`, () => {
    for (const check of applicableChecks(caps)) {
      test(check, () => runCheck(check, factory, caps));
    }
    extraTests?.({ factory, caps });
  });
}
