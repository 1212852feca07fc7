import type { HashKind } from '../target.js';

/**
 * Ways a memory target can be broken on purpose, each breaking one rule of the Target contract,
 * so the conformance suite can be shown to catch it (test/conformance/broken.test.ts).
 */
export type MemoryBrokenMode =
  /** Stores every file one byte short, reporting the full size and the right hash. */
  | 'truncate'
  /** Never compares the bytes read with `size`: a short or long source is stored as read. */
  | 'no-verify'
  /** Writes straight over the final name as bytes arrive: a failed put leaves a part. */
  | 'half-write'
  /** Never reports `unchanged`: re-putting identical content sends it again. */
  | 'not-idempotent'
  /** Leaves its temp entry behind when a put fails. */
  | 'leak-temp'
  /** Stores names as given, so the NFC and NFD spellings of a name become two files. */
  | 'no-nfc'
  /** Reports a hash that is not the hash of the bytes stored. */
  | 'wrong-hash'
  /** Ignores `req.signal`: an aborted put completes. */
  | 'ignore-abort'
  /** Stores no mtime (0) instead of `req.mtimeMs`. */
  | 'drops-mtime'
  /** Creates folders check-then-act across an await: concurrent puts into a new folder lose files. */
  | 'racy-folders'
  /** Accepts names of any length instead of refusing those over `maxNameBytes`. */
  | 'long-names';

/** Options of the in-memory target (tests only: the store lives and dies with the process). */
export interface MemoryTargetOptions {
  id: string;
  /** The hash the target reports and verifies with. Default sha256. */
  hashKind?: HashKind;
  /** Names differing only in case are one file (the first spelling stored is kept). Default false. */
  caseInsensitive?: boolean;
  /** The longest name segment accepted, in UTF-8 bytes. Default 255. */
  maxNameBytes?: number;
  /** Break one rule on purpose. Default: none, a correct target. */
  broken?: MemoryBrokenMode;
}
