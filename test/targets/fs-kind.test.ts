/**
 * Which file systems get synchronous calls on the small-file paths (src/targets/kit/fs-kind.ts):
 * local ones; not network or FUSE ones, where one call can block for minutes. The magic numbers
 * are statfs(2)'s f_type values from Linux's include/uapi/linux/magic.h (CIFS and SMB2 from
 * fs/smb/client/cifsglob.h, FUSE from fs/fuse/inode.c).
 */
import { mkdir, statfs } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fsTypeMayBlock, syncCallsSafe } from '../../src/targets/kit/fs-kind.js';
import { tempDir } from '../helpers/fs.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('file systems and synchronous calls', () => {
  it('network and FUSE file systems may block; local ones do not', () => {
    for (const remote of [0x6969 /* NFS */, 0x517b /* SMB */, 0xff534d42 /* CIFS */, 0xfe534d42 /* SMB2 */, 0x65735546 /* FUSE */, 0x01021997 /* 9p */, 0x00c36400 /* Ceph */]) {
      expect(fsTypeMayBlock(remote), remote.toString(16)).toBe(true);
    }
    for (const local of [0xef53 /* ext2/3/4 */, 0x58465342 /* XFS */, 0x9123683e /* Btrfs */, 0x2fc12fc1 /* ZFS */, 0x01021994 /* tmpfs */, 0x794c7630 /* overlayfs */, 0xf2f52010 /* F2FS */]) {
      expect(fsTypeMayBlock(local), local.toString(16)).toBe(false);
    }
  });

  it("asks the folder's own file system, and asks again when it could not be asked", async () => {
    const t = await tempDir();
    cleanups.push(t.cleanup);
    const here = !fsTypeMayBlock((await statfs(t.dir)).type);
    expect(await syncCallsSafe(t.dir)).toBe(here);
    const later = path.join(t.dir, 'not-mounted-yet');
    expect(await syncCallsSafe(later)).toBe(false);
    await mkdir(later);
    expect(await syncCallsSafe(later)).toBe(here);
  });
});
