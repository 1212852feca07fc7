import { statfs } from 'node:fs/promises';

/**
 * File systems (statfs f_type, from Linux's include/uapi/linux/magic.h and the file systems'
 * own sources) whose calls can block for long: network and FUSE ones. An NFS or SMB server that
 * stops answering holds a call for minutes: made synchronously it would stop the whole daemon
 * (its status page, every other target); on the thread pool it holds one thread.
 */
const MAY_BLOCK = new Set<number>([
  0x6969, // NFS
  0x517b, // SMB
  0xff534d42, // CIFS
  0xfe534d42, // SMB2
  0x65735546, // FUSE (sshfs, rclone mount, mergerfs, ...)
  0x01021997, // 9p (v9fs)
  0x00c36400, // Ceph
  0x5346414f, // AFS
  0x6b414653, // kAFS
  0x0bd00bd0, // Lustre
  0x47504653, // GPFS
  0x73757245, // Coda
  0x564c, // NCP
]);

/** Whether a file system of this statfs type may block its callers for long (see MAY_BLOCK). */
export const fsTypeMayBlock = (type: number): boolean => MAY_BLOCK.has(type);

const known = new Map<string, Promise<boolean>>();

/**
 * Whether synchronous file calls are safe under `dir`: true on a local file system, where a small
 * file's calls take microseconds each (the small-file paths of deliver.ts and the local target
 * make them synchronous), false on a network or FUSE one, whose files then take the
 * promise-based calls. Asked once per folder for the life of the process; a folder that cannot
 * be asked now (a root not mounted yet) counts as not safe and is asked again next time.
 */
export function syncCallsSafe(dir: string): Promise<boolean> {
  let answer = known.get(dir);
  if (answer === undefined) {
    answer = statfs(dir).then(
      (s) => !fsTypeMayBlock(s.type),
      () => {
        known.delete(dir);
        return false;
      },
    );
    known.set(dir, answer);
  }
  return answer;
}
