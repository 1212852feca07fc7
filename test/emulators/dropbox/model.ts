/**
 * The emulated Dropbox namespace: one user's tree of files and folders, case-insensitive by
 * `path_lower`, with Dropbox's ids, revs, timestamps and metadata shapes, a change log for
 * `list_folder/continue`, and the path rules the API enforces.
 */
import type { BlobInfo } from '../harness/index.js';
import { badInput, type Tagged } from './errors.js';

export interface FileNode {
  kind: 'file';
  id: string;
  name: string;
  lower: string;
  display: string;
  size: number;
  contentHash: string;
  rev: string;
  serverModified: string;
  clientModified: string;
  blob: BlobInfo;
}

export interface FolderNode {
  kind: 'folder';
  id: string;
  name: string;
  lower: string;
  display: string;
}

export type Node = FileNode | FolderNode;

/** One change, as `list_folder/continue` reports it after the initial listing. */
interface Change {
  seq: number;
  lower: string;
  meta: Record<string, unknown>;
}

/**
 * Names Dropbox refuses to store (its "ignored files" list: desktop.ini, thumbs.db, .ds_store,
 * icon\r, .dropbox, .dropbox.attr), compared case-insensitively: a write answers
 * `disallowed_name`.
 */
export const DISALLOWED_NAMES = new Set(['desktop.ini', 'thumbs.db', '.ds_store', 'icon\r', '.dropbox', '.dropbox.attr']);

/** Dropbox's timestamp format: ISO 8601 in UTC, whole seconds. */
export function dropboxTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export const TIMESTAMP_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

/**
 * Why a path component is refused: `malformed_path` for what no path may hold (empty, `.`,
 * `..`, a backslash, NUL or DEL, an unpaired surrogate, trailing whitespace), `disallowed_name`
 * for the names Dropbox will not store. Null when the name is fine. Trailing dots are accepted:
 * rclone, whose integration tests run against the real service, escapes trailing spaces for
 * Dropbox but not trailing dots.
 */
export function nameProblem(name: string): 'malformed_path' | 'disallowed_name' | null {
  if (name === '' || name === '.' || name === '..') return 'malformed_path';
  // Before the whitespace rule: `Icon\r` ends in whitespace but is refused by name.
  if (DISALLOWED_NAMES.has(name.toLowerCase())) return 'disallowed_name';
  if (/[\\\u0000\u007f]/.test(name)) return 'malformed_path';
  if (/\s$/.test(name)) return 'malformed_path';
  if (LONE_SURROGATE.test(name)) return 'malformed_path';
  return null;
}

/** A parsed `/a/b/c` path: its components as given. */
export interface ParsedPath {
  parts: string[];
  lower: string;
}

/**
 * Parses a write path (`WritePath`: starts with `/`). A path that does not match the pattern at
 * all is a 400 (bad input); one that matches but breaks the naming rules is a route error the
 * caller renders (`malformed_path` or `disallowed_name`).
 */
export function parseWritePath(route: string, field: string, p: unknown): ParsedPath | { problem: 'malformed_path' | 'disallowed_name' } {
  if (typeof p !== 'string') throw badInput(route, `request body: ${field}: expected string, got ${p === undefined ? 'nothing' : typeof p}`);
  if (!p.startsWith('/')) throw badInput(route, `request body: ${field}: '${p}' did not match pattern '(/(.|[\\r\\n])*)|(ns:[0-9]+(/.*)?)'`);
  // `/` and a trailing slash leave an empty component: malformed, as a `//` is.
  const parts = p.slice(1).split('/');
  let disallowed = false;
  for (const part of parts) {
    const why = nameProblem(part);
    if (why === 'malformed_path') return { problem: why };
    if (why === 'disallowed_name') disallowed = true;
  }
  if (disallowed) return { problem: 'disallowed_name' };
  return { parts, lower: '/' + parts.map((x) => x.toLowerCase()).join('/') };
}

/** Splits `name.ext` for autorename (`name (1).ext`); a leading dot is part of the name. */
function splitExt(name: string): [string, string] {
  const i = name.lastIndexOf('.');
  return i > 0 ? [name.slice(0, i), name.slice(i)] : [name, ''];
}

export class Namespace {
  private readonly nodes = new Map<string, Node>();
  private readonly ids = new Map<string, string>();
  private readonly changes: Change[] = [];
  private seq = 0;
  private revSeq = 0;

  constructor(private readonly random: () => number) {}

  /** The newest change number; a cursor remembers it. */
  get changeSeq(): number {
    return this.seq;
  }

  get(lower: string): Node | undefined {
    return this.nodes.get(lower);
  }

  byId(id: string): Node | undefined {
    const lower = this.ids.get(id);
    return lower === undefined ? undefined : this.nodes.get(lower);
  }

  /** Every node, in path order. */
  all(): Node[] {
    return [...this.nodes.values()].sort((a, b) => (a.lower < b.lower ? -1 : a.lower > b.lower ? 1 : 0));
  }

  /** Children (or all descendants) of a folder (`''` is the root), in path order. */
  list(lower: string, recursive: boolean): Node[] {
    const prefix = lower + '/';
    return this.all().filter((n) => n.lower.startsWith(prefix) && (recursive || !n.lower.slice(prefix.length).includes('/')));
  }

  /** Bytes stored: what `get_space_usage` reports as used. */
  used(): number {
    let n = 0;
    for (const node of this.nodes.values()) if (node.kind === 'file') n += node.size;
    return n;
  }

  newId(): string {
    const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';
    let s = 'id:';
    for (let i = 0; i < 22; i++) s += abc[Math.floor(this.random() * abc.length)];
    return s;
  }

  /** A fresh rev: lower-case hex, at least 9 digits, as Dropbox's `Rev` pattern asks. */
  newRev(): string {
    this.revSeq++;
    return `5${this.revSeq.toString(16).padStart(8, '0')}${Math.floor(this.random() * 0xffffff).toString(16).padStart(6, '0')}`;
  }

  /**
   * What stands in the way of writing at `parts`: a file among the ancestors
   * (`file_ancestor`), or null. Missing ancestors are fine: writes create them.
   */
  ancestorConflict(parts: string[]): 'file_ancestor' | null {
    let lower = '';
    for (const part of parts.slice(0, -1)) {
      lower += '/' + part.toLowerCase();
      if (this.nodes.get(lower)?.kind === 'file') return 'file_ancestor';
    }
    return null;
  }

  /**
   * Creates the missing ancestors of `parts` (as folders named as given) and returns the parent's
   * display path. Callers checked `ancestorConflict` first.
   */
  ensureParents(parts: string[]): string {
    let lower = '';
    let display = '';
    for (const part of parts.slice(0, -1)) {
      lower += '/' + part.toLowerCase();
      const existing = this.nodes.get(lower);
      if (existing) {
        display = existing.display;
        continue;
      }
      display += '/' + part;
      this.insert({ kind: 'folder', id: this.newId(), name: part, lower, display });
    }
    return display;
  }

  /** The first free name for autorename: `name (1).ext`, `name (2).ext`, … (or a custom label). */
  freeName(parentLower: string, name: string, label?: string): string {
    const [base, ext] = splitExt(name);
    for (let i = 1; ; i++) {
      const candidate = label
        ? `${base} (${label}${i === 1 ? '' : ` ${i}`})${ext}`
        : `${base} (${i})${ext}`;
      if (!this.nodes.has(`${parentLower}/${candidate.toLowerCase()}`)) return candidate;
    }
  }

  addFolder(parentDisplay: string, name: string): FolderNode {
    const display = `${parentDisplay}/${name}`;
    const node: FolderNode = { kind: 'folder', id: this.newId(), name, lower: display.toLowerCase(), display };
    this.insert(node);
    return node;
  }

  /** Stores a file (new, or a new version of the one at the same path, keeping its id). */
  putFile(f: Omit<FileNode, 'kind' | 'id' | 'lower' | 'display' | 'rev' | 'serverModified'> & { parentDisplay: string }, nowMs: number): FileNode {
    const display = `${f.parentDisplay}/${f.name}`;
    const lower = display.toLowerCase();
    const old = this.nodes.get(lower);
    const node: FileNode = {
      kind: 'file',
      id: old?.kind === 'file' ? old.id : this.newId(),
      // A new version keeps the stored casing of the name, as Dropbox does for the path.
      name: old?.kind === 'file' ? old.name : f.name,
      lower,
      display: old?.kind === 'file' ? old.display : display,
      size: f.size,
      contentHash: f.contentHash,
      rev: this.newRev(),
      serverModified: dropboxTime(nowMs),
      clientModified: f.clientModified,
      blob: f.blob,
    };
    this.insert(node);
    return node;
  }

  /** Replaces a node's stored state without a change entry (test controls: corruption). */
  patch(node: FileNode): void {
    this.nodes.set(node.lower, node);
  }

  /** Deletes a node and everything under it; returns what was removed (the node first). */
  remove(lower: string): Node[] {
    const top = this.nodes.get(lower);
    if (!top) return [];
    const gone = [top, ...this.list(lower, true)];
    for (const n of gone) {
      this.nodes.delete(n.lower);
      this.ids.delete(n.id);
    }
    this.changes.push({ seq: ++this.seq, lower, meta: { '.tag': 'deleted', name: top.name, path_lower: top.lower, path_display: top.display } });
    return gone;
  }

  /** Changes after `seq` at or under `lower` (`''` = everywhere), oldest first. */
  changesSince(seq: number, lower: string, recursive: boolean): Array<Record<string, unknown>> {
    const prefix = lower + '/';
    return this.changes
      .filter((c) => c.seq > seq && (c.lower === lower || (c.lower.startsWith(prefix) && (recursive || !c.lower.slice(prefix.length).includes('/')))))
      .map((c) => c.meta);
  }

  private insert(node: Node): void {
    this.nodes.set(node.lower, node);
    this.ids.set(node.id, node.lower);
    this.changes.push({ seq: ++this.seq, lower: node.lower, meta: metadata(node) });
  }
}

/** FileMetadata / FolderMetadata as Dropbox writes them (with `.tag` where a union needs it). */
export function metadata(node: Node): Record<string, unknown> & Tagged {
  if (node.kind === 'folder') {
    return { '.tag': 'folder', name: node.name, path_lower: node.lower, path_display: node.display, id: node.id };
  }
  return {
    '.tag': 'file',
    name: node.name,
    path_lower: node.lower,
    path_display: node.display,
    id: node.id,
    client_modified: node.clientModified,
    server_modified: node.serverModified,
    rev: node.rev,
    size: node.size,
    is_downloadable: true,
    content_hash: node.contentHash,
  };
}

/** FileMetadata where the route's result type is the struct itself (no `.tag`). */
export function fileMetadata(node: FileNode): Record<string, unknown> {
  const { '.tag': _tag, ...rest } = metadata(node);
  return rest;
}
