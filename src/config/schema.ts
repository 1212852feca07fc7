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
import { describeValue } from './messages.js';
import { DURATION_PATTERN, SIZE_PATTERN, parseDuration, parseSize } from './units.js';

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
export const TARGET_TYPES = ['local', 'gdrive', 'dropbox', 'box', 'onedrive'] as const;

const ROOT_NAME_RE = /^[A-Za-z0-9._-]+$/;
const TARGET_ID_RE = /^[a-z0-9_-]+$/;

// ---------------------------------------------------------------------------------------------
// Building blocks

function durationSchema(opts: { min?: number } = {}) {
  const min = opts.min ?? 0;
  const error = (issue: { input?: unknown }) =>
    `expected a duration such as 2000 (ms), "2s", "5m" or "1h"${min > 0 ? ` (at least ${min} ms)` : ''}, got ${describeValue(issue.input)}`;
  return z
    .union(
      [
        z.number({ error }).int({ error }).min(0, { error }),
        z.string({ error }).regex(new RegExp(DURATION_PATTERN), { error }),
      ],
      { error },
    )
    .transform((value, ctx) => {
      const ms = parseDuration(value);
      if (ms === undefined || ms < min) {
        ctx.addIssue({ code: 'custom', message: error({ input: value }), input: value });
        return z.NEVER;
      }
      return ms;
    });
}

function sizeSchema(opts: { min?: number } = {}) {
  const min = opts.min ?? 0;
  const error = (issue: { input?: unknown }) =>
    `expected a size such as 1048576 (bytes), "10 MB" or "4 KiB"${min > 0 ? ` (at least ${min} byte)` : ''}, got ${describeValue(issue.input)}`;
  return z
    .union(
      [
        z.number({ error }).int({ error }).min(0, { error }),
        z.string({ error }).regex(new RegExp(SIZE_PATTERN), { error }),
      ],
      { error },
    )
    .transform((value, ctx) => {
      const bytes = parseSize(value);
      if (bytes === undefined || bytes < min) {
        ctx.addIssue({ code: 'custom', message: error({ input: value }), input: value });
        return z.NEVER;
      }
      return bytes;
    });
}

const count = (min: number) => z.number().int().min(min);

/** A file or folder path; relative ones are resolved against the working directory. */
const pathString = z.string().min(1);

/** A secret: never defaulted, never shown in messages. */
const secret = z.string().min(1);

/** A provider's id (Box enterprise or user): YAML reads an unquoted 12345 as a number. */
const numericId = z
  .union([z.string().regex(/^\d+$/, { error: (i) => `expected a numeric id, got ${describeValue(i.input)}` }), z.number().int().min(0)])
  .transform(String);

const url = z.url({ protocol: /^https?$/ });

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
  filters: filtersOverrideSchema.optional(),
});

// ---------------------------------------------------------------------------------------------
// Targets

const targetCommon = {
  id: z
    .string()
    .regex(TARGET_ID_RE, { error: (i) => `expected an id made of a-z 0-9 _ -, got ${describeValue(i.input)}` })
    .optional()
    .describe('Unique id of the target (in logs, status and the journal). Default: the type.'),
  maxDemand: count(1).default(4).describe('Most uploads in flight to this target.'),
  minDemand: count(0)
    .optional()
    .describe('Ask for more work when uploads in flight drop to this. Must be below maxDemand. Default: maxDemand - 1 (a freed slot is refilled at once).'),
  requestsPerSecond: z
    .number()
    .positive()
    .nullable()
    .default(null)
    .describe('Cap on uploads started per second (each attempt of each file counts one; the chunks of a large upload are paced by bytesPerSecond); null: none.'),
  bytesPerSecond: sizeSchema({ min: 1 })
    .nullable()
    .default(null)
    .describe('Cap on upload bandwidth (bytes per second, or "10 MB"); null: none.'),
};

const remoteRoot = z
  .string()
  .default('')
  .transform((value, ctx) => {
    const trimmed = value.replace(/^\/+|\/+$/g, '');
    if (trimmed.split('/').some((segment) => segment === '.' || segment === '..')) {
      ctx.addIssue({ code: 'custom', message: `must not contain "." or ".." segments, got ${describeValue(value)}`, input: value });
      return z.NEVER;
    }
    return trimmed;
  })
  .describe('Folder on the cloud under which everything is archived, e.g. "Stagecoach". Default: the top.');

/**
 * How long a cloud request may go unanswered before it is dropped and retried (a hung
 * connection). Each provider counts it its own way; see docs/operations.md.
 */
const requestTimeoutMs = durationSchema({ min: 1000 })
  .optional()
  .describe(
    'A request that hangs this long is dropped and retried. Default and meaning per provider: gdrive 2 min (uploads get more time per byte), onedrive 2 min with nothing sent or received, dropbox and box 10 min for the whole request including the chunk it sends.',
  );

const localTarget = z.strictObject({
  type: z.literal('local'),
  ...targetCommon,
  // A local put is mostly waiting on the disk (its fsync): more at once share the disk's flushes.
  maxDemand: count(1).default(32).describe('Most uploads in flight to this target (local: 32, the clouds: 4).'),
  path: pathString.describe('The archive folder. Must not be inside a watched root, nor contain one.'),
  keepVersions: z
    .boolean()
    .default(false)
    .describe('Keep the previous copy of a changed file instead of replacing it.'),
});

const gdriveTarget = z.strictObject({
  type: z.literal('gdrive'),
  ...targetCommon,
  remoteRoot,
  requestTimeoutMs,
  auth: z.discriminatedUnion('kind', [
    z.strictObject({
      kind: z.literal('oauth'),
      clientId: z.string().min(1),
      clientSecret: secret,
      refreshToken: secret.optional().describe('Default: the token `stagecoach auth <id>` saved in the state folder.'),
    }),
    z.strictObject({
      kind: z.literal('serviceAccount'),
      keyFile: pathString.describe('The service account JSON key file.'),
    }),
  ]),
  sharedDriveId: z
    .string()
    .min(1)
    .optional()
    .describe('Archive into this shared drive (needed with a service account: it has no storage of its own).'),
  endpoints: z
    .strictObject({ rootUrl: url, tokenUrl: url })
    .optional()
    .describe('Base URLs (for emulators and tests).'),
});

const dropboxTarget = z.strictObject({
  type: z.literal('dropbox'),
  ...targetCommon,
  remoteRoot,
  requestTimeoutMs,
  auth: z.strictObject({
    appKey: z.string().min(1),
    appSecret: secret.optional().describe('Absent: the refresh token was obtained with PKCE.'),
    refreshToken: secret.optional().describe('Default: the token `stagecoach auth <id>` saved in the state folder.'),
  }),
  endpoints: z.strictObject({ api: url, content: url }).optional().describe('Base URLs (for emulators and tests).'),
});

const boxTarget = z.strictObject({
  type: z.literal('box'),
  ...targetCommon,
  remoteRoot,
  requestTimeoutMs,
  auth: z.discriminatedUnion('kind', [
    z.strictObject({
      kind: z.literal('oauth'),
      clientId: z.string().min(1),
      clientSecret: secret,
      refreshToken: secret
        .optional()
        .describe('The first refresh token. Box rotates it on every use; later ones are kept in the state folder.'),
      tokenFile: pathString.optional().describe('Where rotated tokens are kept. Default: in the state folder.'),
    }),
    z
      .strictObject({
        kind: z.literal('ccg'),
        clientId: z.string().min(1),
        clientSecret: secret,
        enterpriseId: numericId.optional(),
        userId: numericId.optional(),
      })
      .superRefine((auth, ctx) => {
        if ((auth.enterpriseId === undefined) === (auth.userId === undefined)) {
          ctx.addIssue({
            code: 'custom',
            path: auth.enterpriseId === undefined ? [] : ['userId'],
            message: 'client credentials need exactly one of enterpriseId or userId',
            input: auth,
          });
        }
      }),
  ]),
  endpoints: z
    .strictObject({ baseUrl: url, uploadUrl: url, oauth2Url: url })
    .optional()
    .describe('Base URLs (for emulators and tests).'),
});

const onedriveTarget = z.strictObject({
  type: z.literal('onedrive'),
  ...targetCommon,
  remoteRoot,
  requestTimeoutMs,
  auth: z.discriminatedUnion('kind', [
    z.strictObject({
      kind: z.literal('delegated'),
      clientId: z.string().min(1),
      tenant: z.string().min(1).default('consumers').describe('"consumers" (personal), "organizations", or a tenant id or domain.'),
      clientSecret: secret.optional().describe('Absent: a public client.'),
      tokenCacheFile: pathString.optional().describe('Where MSAL keeps its token cache. Default: in the state folder.'),
    }),
    z
      .strictObject({
        kind: z.literal('app'),
        tenant: z.string().min(1).describe('The tenant id or domain.'),
        clientId: z.string().min(1),
        clientSecret: secret,
        userId: z.string().min(1).describe("The user whose drive is written (id or user principal name)."),
      })
      .superRefine((auth, ctx) => {
        if (['common', 'consumers', 'organizations'].includes(auth.tenant.toLowerCase())) {
          ctx.addIssue({
            code: 'custom',
            path: ['tenant'],
            message: `app auth needs your tenant id or domain, got ${describeValue(auth.tenant)}`,
            input: auth.tenant,
          });
        }
      }),
  ]),
  driveId: z.string().min(1).optional().describe("Archive into this drive. Default: the user's OneDrive."),
  endpoints: z.strictObject({ graph: url, login: url }).optional().describe('Base URLs (for emulators and tests).'),
});

const targetSchema = z.discriminatedUnion('type', [localTarget, gdriveTarget, dropboxTarget, boxTarget, onedriveTarget]);

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
  stableMs: durationSchema()
    .default(2000)
    .describe('A file must be unchanged (size and mtime) this long before it is archived.'),
  shutdownMs: durationSchema().default(10000).describe('On SIGTERM, in-flight uploads get this long to finish.'),
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
type FileTarget = FileConfig['targets'][number];

/** A target with its id and minDemand filled in (distributes over the union). */
type ResolvedTarget<T> = T extends unknown ? Omit<T, 'id' | 'minDemand'> & { id: string; minDemand: number } : never;

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
      filters,
    };
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
    return { ...target, id, minDemand } as ResolvedTarget<FileTarget>;
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

/** The config as written (what the JSON Schema describes). */
export type ConfigInput = z.input<typeof configSchema>;
/** The resolved config: every default applied, every derived value filled in. */
export type Config = z.output<typeof configSchema>;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = (typeof LOG_FORMATS)[number];
export type FiltersConfig = Config['filters'];
export type RootConfig = Config['roots'][number];
export type TargetConfig = Config['targets'][number];
export type TargetType = TargetConfig['type'];
export type LocalTargetConfig = Extract<TargetConfig, { type: 'local' }>;
export type GdriveTargetConfig = Extract<TargetConfig, { type: 'gdrive' }>;
export type DropboxTargetConfig = Extract<TargetConfig, { type: 'dropbox' }>;
export type BoxTargetConfig = Extract<TargetConfig, { type: 'box' }>;
export type OnedriveTargetConfig = Extract<TargetConfig, { type: 'onedrive' }>;
