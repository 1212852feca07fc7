import { randomBytes } from 'node:crypto';

/** Random once per process: boundaries differ between processes, and no one outside can guess them. */
const PROCESS_PART = randomBytes(9).toString('hex');
let counter = 0;

/**
 * A multipart boundary `prefix` + this process's random part + a counter, that none of `contents`
 * holds (a collision takes the next count). A fresh randomBytes per body cost ~25 µs of the main
 * thread per small upload; this costs a counter and a search of bytes already in memory.
 */
export function multipartBoundary(prefix: string, contents: readonly Buffer[]): string {
  for (;;) {
    const boundary = `${prefix}${PROCESS_PART}${(counter++).toString(36)}`;
    if (!contents.some((c) => c.includes(boundary))) return boundary;
  }
}
