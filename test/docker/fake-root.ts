/**
 * A fake container for docker/entrypoint.sh: a temp folder standing for `/` (passed as
 * STAGECOACH_ENTRYPOINT_ROOT) and a folder of stub commands put first on PATH. The stubs record
 * every call in a log and keep a fake /etc/passwd and /etc/group inside the fake root, so that a
 * second start sees what the first created:
 *
 * - `id -u` / `id -g` answer FAKE_UID / FAKE_GID (default 0: the entrypoint starts as root);
 * - getent, groupadd, groupmod, useradd, usermod read and edit <root>/etc/{passwd,group};
 * - chown only records (the test never needs root);
 * - setpriv records, then execs the command after `--` (FAKE_UNREADABLE=1 makes a `test`
 *   command fail, as a share the user cannot read would);
 * - node records its arguments, its pid and a few env vars, then exits FAKE_NODE_EXIT.
 */
import { spawn } from 'node:child_process';
import { chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ROOT } from '../helpers/daemon.js';
import { tempDir } from '../helpers/fs.js';

export const ENTRYPOINT = path.join(ROOT, 'docker', 'entrypoint.sh');
export const WRAPPER = path.join(ROOT, 'docker', 'stagecoach');
export const DEFAULT_CONFIG = path.join(ROOT, 'docker', 'stagecoach.yaml');

const RECORD = `printf '%s' "$(basename "$0")" >>"$STUB_LOG"; for a in "$@"; do printf '\\t%s' "$a" >>"$STUB_LOG"; done; printf '\\n' >>"$STUB_LOG"`;

const STUBS: Record<string, string> = {
  id: `case "$1" in -u) echo "\${FAKE_UID:-0}" ;; -g) echo "\${FAKE_GID:-0}" ;; *) exit 1 ;; esac`,
  getent: `${RECORD}
db="$STAGECOACH_ENTRYPOINT_ROOT/etc/$1"
awk -F: -v k="$2" '$1 == k || $3 == k { print; found = 1; exit } END { exit !found }' "$db" || exit 2`,
  groupadd: `${RECORD}
[ "$1" = -g ] || exit 9
echo "$3:x:$2:" >>"$STAGECOACH_ENTRYPOINT_ROOT/etc/group"`,
  groupmod: `${RECORD}
[ "$1" = -g ] || exit 9
f="$STAGECOACH_ENTRYPOINT_ROOT/etc/group"
awk -F: -v OFS=: -v n="$3" -v g="$2" '$1 == n { $3 = g } { print }' "$f" >"$f.tmp" && mv "$f.tmp" "$f"`,
  useradd: `${RECORD}
uid= gid= home= shell=
while [ $# -gt 1 ]; do
  case "$1" in -u) uid=$2; shift ;; -g) gid=$2; shift ;; -d) home=$2; shift ;; -s) shell=$2; shift ;; -o|-M) ;; *) exit 9 ;; esac
  shift
done
echo "$1:x:$uid:$gid::$home:$shell" >>"$STAGECOACH_ENTRYPOINT_ROOT/etc/passwd"`,
  usermod: `${RECORD}
uid= gid=
while [ $# -gt 1 ]; do
  case "$1" in -u) uid=$2; shift ;; -g) gid=$2; shift ;; -o) ;; *) exit 9 ;; esac
  shift
done
f="$STAGECOACH_ENTRYPOINT_ROOT/etc/passwd"
awk -F: -v OFS=: -v n="$1" -v u="$uid" -v g="$gid" '$1 == n { if (u != "") $3 = u; if (g != "") $4 = g } { print }' "$f" >"$f.tmp" && mv "$f.tmp" "$f"`,
  chown: RECORD,
  setpriv: `${RECORD}
while [ $# -gt 0 ] && [ "$1" != -- ]; do shift; done
shift
if [ "$1" = test ] && [ -n "\${FAKE_UNREADABLE:-}" ]; then exit 1; fi
exec "$@"`,
  node: `${RECORD}
{ echo "pid=$$"; echo "HOME=\${HOME:-}"; echo "USER=\${USER:-}"; echo "STAGECOACH_CONFIG=\${STAGECOACH_CONFIG:-}"; echo "TZ=\${TZ:-}"; } >"$STUB_LOG.node"
exit "\${FAKE_NODE_EXIT:-0}"`,
};

/** One call of a stub: its name and arguments. */
export interface Call {
  cmd: string;
  args: string[];
}

export interface RunResult {
  code: number | null;
  /** The pid of the shell that ran the script. */
  pid: number;
  stderr: string;
  calls: Call[];
  /** What the node stub saw (pid, HOME, USER, STAGECOACH_CONFIG, TZ), or null when node never ran. */
  node: Record<string, string> | null;
}

export interface FakeRoot {
  /** The folder standing for `/`. */
  dir: string;
  /** `<dir>/<p>` for a container path. */
  at(p: string): string;
  /** Runs `sh <script> ...args` in the fake container; `env` adds to or overrides its env. */
  run(script: string, args: string[], env?: Record<string, string>): Promise<RunResult>;
  cleanup(): Promise<void>;
}

/**
 * A fresh fake container: the image's files the entrypoint reads (/app/docker/stagecoach.yaml,
 * one zone under /usr/share/zoneinfo), Debian's base users and groups (root, nobody, users=100),
 * an empty /data, and no /config yet.
 */
export async function fakeRoot(): Promise<FakeRoot> {
  const t = await tempDir('stagecoach-docker-');
  const root = path.join(t.dir, 'root');
  const bin = path.join(t.dir, 'bin');
  const log = path.join(t.dir, 'calls.log');
  const at = (p: string) => path.join(root, p);
  await mkdir(bin, { recursive: true });
  for (const [name, body] of Object.entries(STUBS)) {
    await writeFile(path.join(bin, name), `#!/bin/sh\n${body}\n`);
    await chmod(path.join(bin, name), 0o755);
  }
  for (const d of ['app/docker', 'etc', 'usr/share/zoneinfo/Europe', 'data']) await mkdir(at(d), { recursive: true });
  await copyFile(DEFAULT_CONFIG, at('app/docker/stagecoach.yaml'));
  await writeFile(at('usr/share/zoneinfo/Europe/Berlin'), 'TZif2 fake\n');
  await writeFile(at('etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n');
  await writeFile(at('etc/group'), 'root:x:0:\nusers:x:100:\nnogroup:x:65534:\n');

  const run = (script: string, args: string[], env: Record<string, string> = {}) =>
    new Promise<RunResult>((resolve, reject) => {
      void writeFile(log, '').then(async () => {
        await writeFile(`${log}.node`, '');
        const child = spawn('sh', [script, ...args], {
          env: {
            PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin`,
            STAGECOACH_ENTRYPOINT_ROOT: root,
            STUB_LOG: log,
            ...env,
          },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('error', reject);
        child.once('exit', (code) => {
          clearTimeout(timer);
          void (async () => {
            const calls = (await readFile(log, 'utf8'))
              .split('\n')
              .filter(Boolean)
              .map((line) => {
                const [cmd = '', ...rest] = line.split('\t');
                return { cmd, args: rest };
              });
            const nodeText = await readFile(`${log}.node`, 'utf8');
            const node = nodeText ? Object.fromEntries(nodeText.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])) : null;
            resolve({ code, pid: child.pid ?? -1, stderr, calls, node });
          })().catch(reject);
        });
      }, reject);
    });

  return { dir: root, at, run, cleanup: t.cleanup };
}
