/**
 * The config file's schema: one zod schema gives the types (`Config`), the validation (with
 * messages that name the key path) and the docs (descriptions, exported as JSON Schema for
 * editors by json-schema.ts).
 *
 * Every object is strict: an unknown key is an error, never silently ignored. Defaults live
 * here; secrets never have one. Durations are numbers (ms) or strings ("2s", "5m", "1h"); sizes
 * are numbers (bytes) or strings ("10 MB", "4 KiB"). Paths are kept as written: `loadConfig`
 * resolves them against the working directory and checks the ones that must not nest.
 */
import path from 'node:path';
import { z } from 'zod';
import { PROVIDERS, type TargetConfig as ProviderTargetConfig } from '../targets/providers.js';
import { count, durationSchema, pathString, secret, sizeSchema, url } from './fields.js';
import { describeValue } from './messages.js';

/** The tokens `remotePath` may use. */
import { REMOTE_PATH_TOKENS, renderRemotePath } from '../archive/remote-path.js';
export { REMOTE_PATH_TOKENS };

/**
 * What `ignoreTemp: true` skips (picomatch globs on the file's base name): editor swap and
 * backup files, office lock files, partial downloads, rsync's in-progress names, OS litter.
 * The filter stage should use this list, so the docs and the behaviour cannot part.
 */
export const TEMP_NAME_GLOBS: readonly string[] = [
  '*.tmp',
  '*.temp',
  '*.swp',
  '*.swo',
  '*.swx',
  '*~',
  '#*#',
  '.#*',
  '.~lock.*#',
  '~$*',
  '*.part',
  '*.partial',
  '*.crdownload',
  '*.download',
  '.*.??????',
  '.DS_Store',
  '._*',
  'Thumbs.db',
  'ehthumbs.db',
  'desktop.ini',
  '.directory',
  '.nfs*',
  '4913',
  '.goutputstream-*',
  '*.kate-swp',
  '*.!ut',
  // NAS metadata folders: Synology's thumbnails and recycle bin, QNAP's thumbnails.
  '@eaDir',
  '#recycle',
  '.@__thumb',
];

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;

const ROOT_NAME_RE = /^[A-Za-z0-9._-]+$/;

// ---------------------------------------------------------------------------------------------
// Building blocks (the shared ones are in fields.ts)

/** `host:port` (IPv6 in brackets), as `{ host, port }`. */
const listenAddress = z
  .string()
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, { error: (i) => `expected host:port such as "127.0.0.1:8080", got ${describeValue(i.input)}` })
  .transform((s, ctx) => {
    const i = s.lastIndexOf(':');
    const port = Number(s.slice(i + 1));
    if (port > 65535) {
      ctx.addIssue({ code: 'custom', message: `port must be at most 65535, got ${port}`, input: s });
      return z.NEVER;
    }
    return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port };
  });

const glob = z.string().min(1);

// ---------------------------------------------------------------------------------------------
// Filters

const filtersSchema = z
  .strictObject({
    include: z
      .array(glob)
      .default([])
      .describe('Globs (picomatch) on the path inside the root; a file must match one. Empty: every file.'),
    exclude: z.array(glob).default([]).describe('Globs (picomatch) on the path inside the root; a matching file is skipped.'),
    minSize: sizeSchema().default(0).describe('Skip files smaller than this (bytes, or "10KB", "5 MiB").'),
    maxSize: sizeSchema().nullable().default(null).describe('Skip files larger than this; null: no limit.'),
    ignoreHidden: z.boolean().default(true).describe('Skip dotfiles and everything inside dot-folders.'),
    ignoreTemp: z
      .boolean()
      .default(true)
      .describe(`Skip editor, office, browser and rsync temporary names: ${TEMP_NAME_GLOBS.join(' ')}`),
  })
  .describe('Which files are archived.');

const filtersOverrideSchema = z
  .strictObject({
    include: z.array(glob).optional(),
    exclude: z.array(glob).optional(),
    minSize: sizeSchema().optional(),
    maxSize: sizeSchema().nullable().optional(),
    ignoreHidden: z.boolean().optional(),
    ignoreTemp: z.boolean().optional(),
  })
  .describe('Per-root filters; each key given replaces the top-level one (lists are not concatenated).');

// ---------------------------------------------------------------------------------------------
// Roots

const rootSchema = z.strictObject({
  path: pathString.describe('The folder to watch. Relative paths are resolved against the working directory.'),
  name: z
    .string()
    .regex(ROOT_NAME_RE, { error: (i) => `expected a name made of A-Z a-z 0-9 . _ -, got ${describeValue(i.input)}` })
    .optional()
    .describe('Unique name of the root, used in {root} and in the journal. Default: the folder name.'),
  polling: z.boolean().optional().describe('Poll this folder instead of using inotify (network mounts). Default: watcher.usePolling.'),
  pollIntervalMs: durationSchema({ min: 1 })
    .optional()
    .describe('Polling interval for this root. Default: watcher.pollIntervalMs.'),
  createRoot: z
    .boolean()
    .default(false)
    .describe(
      'Make the folder at start when it is not there. Default false: a missing folder (a typo, an unmounted share) is never created; the daemon waits for it to appear and health says so.',
    ),
  followSymlinks: z
    .boolean()
    .default(false)
    .describe(
      'Archive what symbolic links point at. Default false: links are not archived; each is logged once and counted in status. true: a link to a file inside a watched root is archived under the link\'s path; links to folders, outside the roots, or dangling are skipped all the same.',
    ),
  filters: filtersOverrideSchema.optional(),
  afterArchive: z
    .strictObject({
      action: z.enum(['keep', 'delete', 'move']).default('keep').describe('What to do with a file once enough targets hold verified copies: keep it, delete it, or move it to moveTo.'),
      moveTo: pathString.optional().describe('action move: the folder files go to (their layout below the root is kept); must not be inside a watched root.'),
      minCopies: count(1).default(2).describe('Targets that must hold a hash-verified copy first.'),
      minAge: durationSchema().default(0).describe('Files younger than this (by modification time) are left alone ("7d").'),
      verifiedBy: z.enum(['upload', 'scrub']).default('upload').describe('upload: the hash checked when the upload ended counts; scrub: a later verify or scrub must have found the copy intact.'),
      dryRun: z.boolean().default(false).describe('Log what would be removed, remove nothing.'),
    })
    .optional()
    .describe('Free space once files are safely archived (docs/operations.md, "Freeing space safely"). Default: keep everything.'),
  watch: z
    .boolean()
    .optional()
    .describe('false: this daemon only reads the root (a share another daemon on the same journal watches); it still uploads its files. Default true.'),
});

// ---------------------------------------------------------------------------------------------
// Targets: each provider declares its own schema (src/targets/<id>/provider.ts)

function targetsSchema() {
  const [first, ...rest] = Object.values(PROVIDERS).map((p) => p.schema);
  if (first === undefined) throw new Error('[stagecoach] the providers list is empty');
  return z.discriminatedUnion('type', [first, ...rest]);
}

const targetSchema = targetsSchema();

// ---------------------------------------------------------------------------------------------
// The file

const atLeastOne = (what: string) => (issue: { input?: unknown; code?: string }) =>
  issue.input === undefined || (issue.code === 'too_small' && Array.isArray(issue.input))
    ? `at least one ${what} is required`
    : undefined;

const remotePathTemplate = z.string().superRefine((template, ctx) => {
  for (const match of template.matchAll(/\{([^}]*)\}/g)) {
    const token = match[1] ?? '';
    if (!(REMOTE_PATH_TOKENS as readonly string[]).includes(token)) {
      ctx.addIssue({
        code: 'custom',
        message: `unknown token {${token}}; known: ${REMOTE_PATH_TOKENS.map((t) => `{${t}}`).join(' ')}`,
        input: template,
      });
      return;
    }
  }
  if (!template.includes('{path}') && !template.includes('{name}')) {
    ctx.addIssue({
      code: 'custom',
      message: `must contain {path} or {name}, or every file would land on one name, got ${describeValue(template)}`,
      input: template,
    });
    return;
  }
  // Its own text must not climb out of a target's root: render it once with plain values.
  try {
    renderRemotePath(template, { root: 'root', relPath: 'dir/file.txt', mtimeMs: 0, host: 'host' });
  } catch {
    ctx.addIssue({
      code: 'custom',
      message: `must not contain ".", ".." or "\\" segments (a remote path may never leave the target's root), got ${describeValue(template)}`,
      input: template,
    });
  }
});

const fileSchema = z.strictObject({
  stateDir: pathString.default('./data/state').describe('Folder for the SQLite journal and provider tokens.'),
  journal: z
    .strictObject({
      url: z
        .string()
        .regex(/^postgres(ql)?:\/\/[^\s]+$/, { error: 'expected a postgres:// or postgresql:// URL (the value is not shown: it may hold a password)' })
        .describe('A PostgreSQL journal shared by several daemons (docs/scale-out.md), e.g. "${PG_URL}"; a secret in logs.'),
      leaseMs: durationSchema({ min: 1000 })
        .default(60_000)
        .describe('A daemon silent this long (no heartbeat) is dead: its uploads in flight go to another daemon.'),
    })
    .nullable()
    .default(null)
    .describe('Where the journal lives; null: SQLite in stateDir.'),
  node: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, { error: (i) => `expected a name made of A-Z a-z 0-9 . _ - (at most 64), got ${describeValue(i.input)}` })
    .nullable()
    .default(null)
    .describe('This daemon\'s name on a shared journal: one daemon per name. null: the host name.'),
  stableMs: durationSchema()
    .default(2000)
    .describe('A file must be unchanged (size and mtime) this long before it is archived.'),
  shutdownMs: durationSchema().default(10000).describe('On SIGTERM, in-flight uploads get this long to finish.'),
  onCollision: z
    .enum(['rename', 'fail'])
    .default('rename')
    .describe(
      'Two files that one target would store under one name (case, Unicode spelling, its character mapping, a template such as {name}): rename stores the second as name~<6 hex>.ext and reports it; fail fails its delivery naming both files.',
    ),
  remotePath: remotePathTemplate
    .default('{root}/{path}')
    .describe(`Where a file goes on every target. Tokens: ${REMOTE_PATH_TOKENS.map((t) => `{${t}}`).join(' ')}`),
  log: z
    .strictObject({
      level: z.enum(LOG_LEVELS).default('info'),
      format: z.enum(LOG_FORMATS).default('auto').describe('auto: pretty on a terminal, JSON lines otherwise.'),
    })
    .prefault({}),
  filters: filtersSchema.prefault({}),
  watcher: z
    .strictObject({
      rescanMs: durationSchema().default(300_000).describe('Full rescan interval, a safety net for missed events; 0: never.'),
      usePolling: z.boolean().default(false).describe('Poll every root instead of using inotify.'),
      pollIntervalMs: durationSchema({ min: 1 }).default(2000),
    })
    .prefault({}),
  archiver: z
    .strictObject({
      maxDemand: count(1).default(500).describe('Most files the archiver asks the watcher for at once.'),
      minDemand: count(0).optional().describe('Default: floor(maxDemand / 2). Must be below maxDemand.'),
    })
    .prefault({}),
  retry: z
    .strictObject({
      retries: count(0).default(8).describe('Retries of a transient failure; when they run out the delivery waits and the target is parked.'),
      minDelayMs: durationSchema().default(1000),
      maxDelayMs: durationSchema().default(300_000),
    })
    .prefault({}),
  supervisor: z
    .strictObject({
      maxRestarts: count(0).default(3).describe('A target that crashes more often than this within maxSeconds is parked.'),
      maxSeconds: z.number().positive().default(5),
      coolDownMs: durationSchema().default(30_000).describe('A parked target is retried after this, doubling each time.'),
      coolDownMaxMs: durationSchema().default(1_800_000),
    })
    .prefault({}),
  http: z
    .strictObject({
      listen: listenAddress
        .nullable()
        .prefault('127.0.0.1:8080')
        .describe('Where /healthz, /metrics, /api and the status page listen; null: off. Anything but loopback needs a token.'),
      token: z
        .string()
        .min(24, { error: 'must be at least 24 characters long (make one with: openssl rand -hex 24)' })
        .nullable()
        .default(null)
        .describe('Bearer token for /metrics and /api (not /healthz nor the page itself); at least 24 characters. Required when listen is not loopback.'),
      allowedHosts: z
        .array(z.string().regex(/^\.?[A-Za-z0-9.-]+$/, { error: (i) => `expected a host name such as "nas.local" or ".home.lan", got ${describeValue(i.input)}` }))
        .default([])
        .describe('Host names the page is reached by besides IP addresses and localhost (DNS-rebinding guard); ".home.lan" allows every name under it.'),
    })
    .prefault({}),
  notify: z
    .strictObject({
      webhook: url
        .nullable()
        .default(null)
        .describe('JSON POST when a target is parked or recovers and when deliveries fail (ntfy root URL with topic, Apprise /notify/<key>, any webhook).'),
      topic: z.string().min(1).nullable().default(null).describe('ntfy topic, sent in the body.'),
      pingUrl: url.nullable().default(null).describe('GET after each healthy interval (healthchecks.io style).'),
      pingIntervalMs: durationSchema({ min: 1000 }).default(60_000),
      minIntervalMs: durationSchema().default(300_000).describe('Least time between two webhooks of one event for one target.'),
      batchMs: durationSchema().default(30_000).describe('Failed deliveries are gathered this long into one webhook.'),
      recoverAfterMs: durationSchema().default(60_000).describe('A target counts as recovered after a delivery succeeds or it stays up this long.'),
    })
    .prefault({}),
  verify: z
    .strictObject({
      every: durationSchema({ min: 1000 })
        .nullable()
        .default(null)
        .describe('Scrub in the daemon: check the archived copies again over this period ("7d"), a little at a time; null: off.'),
      sample: z
        .union([z.number().gt(0).max(100), z.string().regex(/^\s*\d+(\.\d+)?\s*%?\s*$/)])
        .default(100)
        .transform((v, ctx) => {
          const n = typeof v === 'number' ? v : Number.parseFloat(v);
          if (!(n > 0 && n <= 100)) {
            ctx.addIssue({ code: 'custom', message: `expected a percentage above 0 and up to 100, such as "100%", got ${describeValue(v)}`, input: v });
            return z.NEVER;
          }
          return n;
        })
        .describe('Share of the copies checked per period, least recently verified first ("100%").'),
    })
    .prefault({}),
  roots: z
    .array(rootSchema, { error: atLeastOne('root') })
    .min(1, { error: atLeastOne('root') })
    .describe('The folders to watch (at least one).'),
  targets: z
    .array(targetSchema, { error: atLeastOne('target') })
    .min(1, { error: atLeastOne('target') })
    .describe('Where files are archived (at least one).'),
});

type FileConfig = z.output<typeof fileSchema>;


function folderName(p: string): string {
  return path.basename(p.replace(/[\\/]+$/, ''));
}

/** Fills in the defaults that depend on other keys and runs the checks across keys. */
function resolveDerived(file: FileConfig, ctx: z.core.$RefinementCtx) {
  const issue = (at: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path: at, message, input: undefined });
  const before = ctx.issues.length;

  const minMax = (at: (string | number)[], min: number, max: number) => {
    if (min >= max) issue([...at, 'minDemand'], `must be less than maxDemand (${max}), got ${min}`);
  };

  const listen = file.http.listen;
  if (listen && file.http.token === null && !/^(127\.\d+\.\d+\.\d+|::1|localhost)$/i.test(listen.host)) {
    issue(['http', 'token'], `is required when http.listen (${listen.host}) is reachable from the network: set a token of at least 24 characters (openssl rand -hex 24), or listen on 127.0.0.1`);
  }

  const archiverMin = file.archiver.minDemand ?? Math.floor(file.archiver.maxDemand / 2);
  minMax(['archiver'], archiverMin, file.archiver.maxDemand);
  if (file.retry.minDelayMs > file.retry.maxDelayMs) {
    issue(['retry', 'minDelayMs'], `must not be more than maxDelayMs (${file.retry.maxDelayMs} ms), got ${file.retry.minDelayMs} ms`);
  }
  if (file.supervisor.coolDownMs > file.supervisor.coolDownMaxMs) {
    issue(
      ['supervisor', 'coolDownMs'],
      `must not be more than coolDownMaxMs (${file.supervisor.coolDownMaxMs} ms), got ${file.supervisor.coolDownMs} ms`,
    );
  }
  const sizeOrder = (at: (string | number)[], f: { minSize: number; maxSize: number | null }) => {
    if (f.maxSize !== null && f.minSize > f.maxSize) issue([...at, 'minSize'], `must not be more than maxSize (${f.maxSize}), got ${f.minSize}`);
  };
  sizeOrder(['filters'], file.filters);

  const names = new Map<string, number>();
  const roots = file.roots.map((root, i) => {
    const name = root.name ?? folderName(root.path);
    if (root.name === undefined && (!ROOT_NAME_RE.test(name) || /^\.+$/.test(name))) {
      issue(['roots', i, 'name'], `the folder name ${describeValue(name)} cannot be a root name (A-Z a-z 0-9 . _ -): set name`);
    } else if (/^\.+$/.test(name)) {
      issue(['roots', i, 'name'], `must not be only dots, got ${describeValue(name)}`);
    }
    const first = names.get(name);
    if (first !== undefined) {
      issue(['roots', i, 'name'], `duplicate root name ${describeValue(name)} (also roots.${first}); give each root its own name`);
    } else {
      names.set(name, i);
    }
    const filters = { ...file.filters };
    for (const [key, value] of Object.entries(root.filters ?? {})) {
      if (value !== undefined) (filters as Record<string, unknown>)[key] = value;
    }
    if (root.filters?.minSize !== undefined || root.filters?.maxSize !== undefined) sizeOrder(['roots', i, 'filters'], filters);
    return {
      path: root.path,
      name,
      polling: root.polling ?? file.watcher.usePolling,
      pollIntervalMs: root.pollIntervalMs ?? file.watcher.pollIntervalMs,
      createRoot: root.createRoot,
      followSymlinks: root.followSymlinks,
      filters,
      ...(root.afterArchive ? { afterArchive: root.afterArchive } : {}),
      ...(root.watch === false ? { watch: false as const } : {}),
    };
  });
  file.roots.forEach((root, i) => {
    const a = root.afterArchive;
    if (a?.action === 'move' && a.moveTo === undefined) issue(['roots', i, 'afterArchive', 'moveTo'], 'action move needs moveTo: the folder the files go to');
    if (a !== undefined && a.minCopies > file.targets.length) {
      issue(['roots', i, 'afterArchive', 'minCopies'], `must not be more than the number of targets (${file.targets.length}), got ${a.minCopies}`);
    }
  });

  const ids = new Map<string, number>();
  const targets = file.targets.map((target, i) => {
    const id = target.id ?? target.type;
    const first = ids.get(id);
    if (first !== undefined) {
      issue(['targets', i, 'id'], `duplicate target id ${describeValue(id)} (also targets.${first}); give each target its own id`);
    } else {
      ids.set(id, i);
    }
    // An upload slot that frees asks for the next delivery at once, so all maxDemand stay busy.
    const minDemand = target.minDemand ?? target.maxDemand - 1;
    minMax(['targets', i], minDemand, target.maxDemand);
    return { ...target, id, minDemand } as ProviderTargetConfig;
  });

  if (ctx.issues.length > before) return z.NEVER;
  return {
    ...file,
    archiver: { maxDemand: file.archiver.maxDemand, minDemand: archiverMin },
    roots,
    targets,
  };
}

/**
 * The config file's schema, input → resolved output. Parse with `parseConfig`/`loadConfig`
 * (they add line numbers, interpolation and path checks); parsing directly validates the shape
 * and cross-key rules but leaves paths as written.
 */
export const configSchema = fileSchema.transform(resolveDerived);

/** The resolved config: every default applied, every derived value filled in. */
export type Config = z.output<typeof configSchema>;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = (typeof LOG_FORMATS)[number];
export type TargetConfig = Config['targets'][number];
