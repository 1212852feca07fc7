import type { FileHandle } from 'node:fs/promises';

/** The unit of a hole: file systems allocate (and punch) whole blocks, 4 KiB on most. */
const BLOCK = 4096;
const ZEROS = Buffer.alloc(BLOCK);

/**
 * Writes a new file from its chunks, in order, leaving every block-aligned run of zeros
 * unwritten: on a file system with sparse files those stay holes, so a sparse source (a VM
 * disk, a database file) stays sparse in the archive, and what is unwritten reads back as zeros
 * all the same. `finish()` sets the length (a trailing hole included). The file MUST be new and
 * empty (opened with `wx`).
 */
export class SparseWriter {
  private position = 0;

  constructor(private readonly fh: FileHandle) {}

  async write(chunk: Buffer): Promise<void> {
    let start = 0;
    while (start < chunk.length) {
      // Pieces end at block boundaries of the file, so a zero piece is a whole block where it can.
      const end = Math.min(chunk.length, start + BLOCK - ((this.position + start) % BLOCK));
      if (isZero(chunk, start, end)) {
        start = end;
        continue;
      }
      // Coalesce the data pieces that follow into one write.
      let stop = end;
      for (;;) {
        if (stop >= chunk.length) break;
        const next = Math.min(chunk.length, stop + BLOCK);
        if (isZero(chunk, stop, next)) break;
        stop = next;
      }
      await writeAt(this.fh, chunk.subarray(start, stop), this.position + start);
      start = stop;
    }
    this.position += chunk.length;
  }

  /** Sets the file's length to the bytes written: a run of zeros at the end becomes a hole too. */
  async finish(): Promise<void> {
    await this.fh.truncate(this.position);
  }
}

function isZero(b: Buffer, start: number, end: number): boolean {
  return b.subarray(start, end).equals(end - start === BLOCK ? ZEROS : ZEROS.subarray(0, end - start));
}

async function writeAt(fh: FileHandle, data: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const { bytesWritten } = await fh.write(data, off, data.length - off, position + off);
    off += bytesWritten;
  }
}
