/**
 * writeChunkSync (src/targets/local/upload.ts): a large copy's chunk as the local target's worker
 * thread writes and reads it back, with synchronous calls. Run here with a file system that
 * records the calls, and can fail or alter what it reads back.
 */
import * as fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { type ChunkJob, writeChunkSync } from '../../../src/targets/local/upload.js';
import { seededBytes } from '../../conformance/sources.js';
import { tempDir } from '../../helpers/fs.js';

const MiB = 1024 * 1024;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function scratch(): Promise<{ fd: number; file: string }> {
  const { dir, cleanup } = await tempDir('stagecoach-chunk-sync-');
  const file = path.join(dir, 'copy.tmp');
  const fd = fs.openSync(file, 'wx+');
  cleanups.push(async () => {
    fs.closeSync(fd);
    await cleanup();
  });
  return { fd, file };
}

/** `bytes` in shared memory at `offset`, as the copy's ring holds a chunk. */
function sharedChunk(bytes: Buffer, offset = 0): { buffer: SharedArrayBuffer; offset: number; length: number } {
  const buffer = new SharedArrayBuffer(offset + bytes.length);
  Buffer.from(buffer, offset, bytes.length).set(bytes);
  return { buffer, offset, length: bytes.length };
}

describe('writeChunkSync', () => {
  test('writes at its position in pieces of at most 128 KiB, leaves whole zero blocks unwritten, and reads the range back', async () => {
    const { fd, file } = await scratch();
    const bytes = seededBytes(3, MiB + 100);
    bytes.fill(0, 8192, 8192 + 3 * 4096);
    const writes: Array<[number, number]> = [];
    const recording = {
      writeSync: (f: number, b: Buffer, off: number, len: number, pos: number) => {
        writes.push([pos, len]);
        return fs.writeSync(f, b, off, len, pos);
      },
      readSync: fs.readSync,
    } as Pick<typeof fs, 'writeSync' | 'readSync'>;
    const job: ChunkJob = { fd, position: 4096, ...sharedChunk(bytes, 64) };
    expect(writeChunkSync(recording, job, { buffer: null })).toEqual({ mismatchAt: null });
    expect(Math.max(...writes.map(([, len]) => len))).toBeLessThanOrEqual(128 * 1024);
    // Every byte but the three zero blocks, once.
    expect(writes.reduce((n, [, len]) => n + len, 0)).toBe(bytes.length - 3 * 4096);
    expect(writes.some(([pos, len]) => pos < 4096 + 8192 + 3 * 4096 && pos + len > 4096 + 8192)).toBe(false);
    const stored = fs.readFileSync(file);
    expect(stored.subarray(4096).equals(bytes)).toBe(true);
  });

  test('a range that reads back other than it was written: the mismatch, at the chunk\'s position', async () => {
    const { fd } = await scratch();
    const bytes = seededBytes(4, 300_000);
    const altered = {
      writeSync: fs.writeSync,
      readSync: (f: number, b: Buffer, off: number, len: number, pos: number) => {
        const n = fs.readSync(f, b, off, len, pos);
        b[off + 1000] = b[off + 1000]! ^ 0xff;
        return n;
      },
    } as Pick<typeof fs, 'writeSync' | 'readSync'>;
    expect(writeChunkSync(altered, { fd, position: 2 * MiB, ...sharedChunk(bytes) }, { buffer: null })).toEqual({ mismatchAt: 2 * MiB });
  });

  test('a write that fails: the error itself (its code kept for the target to classify), nothing thrown', async () => {
    const { fd } = await scratch();
    const full = {
      writeSync: () => {
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
      },
      readSync: fs.readSync,
    } as unknown as Pick<typeof fs, 'writeSync' | 'readSync'>;
    const answer = writeChunkSync(full, { fd, position: 0, ...sharedChunk(seededBytes(5, 10_000)) }, { buffer: null });
    expect(answer).toMatchObject({ error: { code: 'ENOSPC', syscall: 'write' } });
  });
});
