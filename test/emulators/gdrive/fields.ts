/**
 * The `fields` system parameter (a FieldMask): `a,b/c,d(e,f)`, `*` for everything at a level.
 * Parsing, validation against what a resource can hold, and the partial response itself.
 */

/** key → sub-mask, or null for "the whole value". */
export type FieldMask = Map<string, FieldMask | null>;

/** What a resource can hold: key → nested schema, `'leaf'`, or `'open'` (any sub-keys). */
export type FieldSchema = Map<string, FieldSchema | 'leaf' | 'open'>;

export class FieldMaskError extends Error {
  constructor(readonly field: string) {
    super(`Invalid field selection ${field}`);
    this.name = 'FieldMaskError';
  }
}

/** Parses a mask; throws FieldMaskError on a syntax error. */
export function parseFieldMask(text: string): FieldMask {
  let i = 0;
  const s = text.replace(/\s+/g, '');
  const parseList = (depth: number): FieldMask => {
    const mask: FieldMask = new Map();
    for (;;) {
      const start = i;
      while (i < s.length && /[A-Za-z0-9_*/.@-]/.test(s[i]!)) i++;
      const path = s.slice(start, i);
      if (!path || path.startsWith('/') || path.endsWith('/') || path.includes('//')) throw new FieldMaskError(path || s.slice(start, start + 1) || text);
      let sub: FieldMask | null = null;
      if (s[i] === '(') {
        i++;
        sub = parseList(depth + 1);
        if (s[i] !== ')') throw new FieldMaskError(text);
        i++;
      }
      insertPath(mask, path.split('/'), sub);
      if (s[i] === ',') {
        i++;
        continue;
      }
      if (s[i] === ')' && depth > 0) return mask;
      if (i === s.length && depth === 0) return mask;
      throw new FieldMaskError(text);
    }
  };
  if (s === '') return new Map();
  return parseList(0);
}

function insertPath(mask: FieldMask, parts: string[], leafSub: FieldMask | null): void {
  const [head, ...rest] = parts;
  const existing = mask.get(head!);
  if (rest.length === 0) {
    if (existing === undefined || leafSub === null) mask.set(head!, leafSub);
    else if (existing !== null) for (const [k, v] of leafSub) existing.set(k, v);
    return;
  }
  if (existing === null) return; // already whole
  const sub = existing ?? new Map();
  mask.set(head!, sub);
  insertPath(sub, rest, leafSub);
}

/** Throws FieldMaskError naming the first key the schema does not know. */
export function validateMask(mask: FieldMask, schema: FieldSchema, prefix = ''): void {
  for (const [key, sub] of mask) {
    if (key === '*') continue;
    const s = schema.get(key);
    if (s === undefined) throw new FieldMaskError(prefix + key);
    if (sub === null || s === 'open') continue;
    if (s === 'leaf') throw new FieldMaskError(prefix + key + '/' + [...sub.keys()][0]);
    validateMask(sub, s, `${prefix}${key}/`);
  }
}

/** The partial response: only what the mask selects (arrays are masked element by element). */
export function applyMask(value: unknown, mask: FieldMask | null): unknown {
  if (mask === null || mask.has('*')) return value;
  if (Array.isArray(value)) return value.map((v) => applyMask(v, mask));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  const obj = value as Record<string, unknown>;
  for (const [key, sub] of mask) {
    if (obj[key] !== undefined) out[key] = applyMask(obj[key], sub);
  }
  return out;
}

const leaf = 'leaf' as const;
const open = 'open' as const;

/** Every field of the Drive v3 File resource the emulator knows (absent ones are omitted). */
export const FILE_SCHEMA: FieldSchema = new Map<string, FieldSchema | 'leaf' | 'open'>([
  ...[
    'kind', 'id', 'name', 'mimeType', 'description', 'starred', 'trashed', 'explicitlyTrashed', 'parents',
    'spaces', 'version', 'webContentLink', 'webViewLink', 'iconLink', 'hasThumbnail', 'thumbnailLink',
    'thumbnailVersion', 'viewedByMe', 'viewedByMeTime', 'createdTime', 'modifiedTime', 'modifiedByMeTime',
    'modifiedByMe', 'sharedWithMeTime', 'shared', 'ownedByMe', 'viewersCanCopyContent', 'copyRequiresWriterPermission',
    'writersCanShare', 'permissionIds', 'hasAugmentedPermissions', 'folderColorRgb', 'originalFilename',
    'fullFileExtension', 'fileExtension', 'md5Checksum', 'sha1Checksum', 'sha256Checksum', 'size',
    'quotaBytesUsed', 'headRevisionId', 'isAppAuthorized', 'driveId', 'teamDriveId', 'resourceKey',
    'trashedTime', 'inheritedPermissionsDisabled', 'downloadRestrictions',
  ].map((k) => [k, leaf] as const),
  ...['properties', 'appProperties', 'capabilities', 'owners', 'lastModifyingUser', 'trashingUser', 'sharingUser',
    'contentHints', 'imageMediaMetadata', 'videoMediaMetadata', 'shortcutDetails', 'contentRestrictions',
    'linkShareMetadata', 'labelInfo', 'exportLinks', 'permissions'].map((k) => [k, open] as const),
]);

export const FILE_LIST_SCHEMA: FieldSchema = new Map<string, FieldSchema | 'leaf' | 'open'>([
  ['kind', leaf],
  ['nextPageToken', leaf],
  ['incompleteSearch', leaf],
  ['files', FILE_SCHEMA],
]);

export const ABOUT_SCHEMA: FieldSchema = new Map<string, FieldSchema | 'leaf' | 'open'>([
  ['kind', leaf],
  ['user', open],
  ['storageQuota', open],
  ['maxUploadSize', leaf],
  ['appInstalled', leaf],
  ['importFormats', open],
  ['exportFormats', open],
  ['canCreateDrives', leaf],
  ['folderColorPalette', leaf],
  ['maxImportSizes', open],
  ['driveThemes', open],
  ['teamDriveThemes', open],
  ['canCreateTeamDrives', leaf],
]);

/** The default selection when a files method gets no `fields`. */
export const DEFAULT_FILE_MASK: FieldMask = parseFieldMask('kind,id,name,mimeType');
export const DEFAULT_LIST_MASK: FieldMask = parseFieldMask('kind,nextPageToken,incompleteSearch,files(kind,id,name,mimeType)');
