/**
 * Every provider is one folder with the same files in the same roles, and one line in
 * src/targets/providers.ts (docs/architecture.md, "Adding a provider"). This test reads the
 * folders and the list, so a folder that drifts from the others fails here.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, expectTypeOf, test } from 'vitest';
import { z } from 'zod';
import { createBoxTarget, type BoxInternals, type BoxOptions } from '../../src/targets/box/index.js';
import { createDropboxTarget, type DropboxInternals, type DropboxOptions } from '../../src/targets/dropbox/index.js';
import { createGdriveTarget, type GdriveInternals, type GdriveOptions } from '../../src/targets/gdrive/index.js';
import { createLocalTarget, type LocalOptions } from '../../src/targets/local/index.js';
import { createOnedriveTarget, type OnedriveInternals, type OnedriveOptions } from '../../src/targets/onedrive/index.js';
import { PROVIDERS } from '../../src/targets/providers.js';
import type { Target, TargetFactory } from '../../src/targets/target.js';

const TARGETS = path.resolve(import.meta.dirname, '../../src/targets');
/** Shared code, not a provider. */
const NOT_PROVIDERS = new Set(['kit']);
/** Test-only providers: a folder like the others, but not in the config's list. */
const TEST_ONLY = new Set(['memory']);

/** The files of every provider that archives files (index.ts makes the target; provider.ts declares it). */
const EVERY = ['api-types.ts', 'classify.ts', 'download.ts', 'folders.ts', 'index.ts', 'names.ts', 'provider.ts', 'upload.ts'];
/** What a provider that signs in to a service adds: the sign-in and the calls to the service. */
const SIGNED_IN = ['auth.ts', 'transport.ts'];
/** The memory target (tests only) keeps its store in one object: no folders, names or upload of its own. */
const MEMORY = ['api-types.ts', 'classify.ts', 'download.ts', 'index.ts', 'provider.ts'];

const folders = readdirSync(TARGETS).filter((f) => statSync(path.join(TARGETS, f)).isDirectory() && !NOT_PROVIDERS.has(f));

/** The modules a file imports for their values (not `import type`), relative ones resolved. */
function valueImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^import\s+(?!type\s)[^;]*?from\s+'([^']+)';/gms)) out.push(m[1]!);
  return out.map((spec) => (spec.startsWith('.') ? path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')) : spec));
}

/** Every bare module (package) loaded, directly or through relative imports, by importing `file`. */
function packagesLoadedBy(file: string, seen = new Set<string>()): Set<string> {
  const packages = new Set<string>();
  if (seen.has(file)) return packages;
  seen.add(file);
  for (const spec of valueImports(file)) {
    if (path.isAbsolute(spec)) for (const p of packagesLoadedBy(spec, seen)) packages.add(p);
    else packages.add(spec);
  }
  return packages;
}

describe('provider folders', () => {
  test('the providers list names every provider folder but the test-only ones, each under its folder name', () => {
    expect(folders.filter((f) => !TEST_ONLY.has(f)).sort()).toEqual(Object.keys(PROVIDERS).sort());
    for (const [type, provider] of Object.entries(PROVIDERS)) expect(provider.type).toBe(type);
  });

  test.each(folders)('%s has the files of its role, and no other', (folder) => {
    const files = readdirSync(path.join(TARGETS, folder)).sort();
    const hasAuth = files.includes('auth.ts');
    const expected = TEST_ONLY.has(folder) ? MEMORY : hasAuth ? [...EVERY, ...SIGNED_IN] : EVERY;
    expect(files).toEqual([...expected].sort());
  });

  test.each(folders)('%s/provider.ts exports a provider of the same shape as every other', async (folder) => {
    const mod: Record<string, unknown> = await import(path.join(TARGETS, folder, 'provider.ts'));
    expect(Object.keys(mod)).toEqual(['provider']);
    const provider = mod.provider as Record<string, unknown>;
    // `nameKey` and `checkSignedIn` are optional: a provider whose target has none (memory) declares none.
    expect(Object.keys(provider).filter((k) => k !== 'nameKey' && k !== 'checkSignedIn').sort()).toEqual(['authorize', 'create', 'needsSignIn', 'pathKeys', 'schema', 'secretKeys', 'type']);
    expect(provider.nameKey === undefined || typeof provider.nameKey === 'function').toBe(true);
    expect(provider.checkSignedIn === undefined || typeof provider.checkSignedIn === 'function').toBe(true);
    expect(provider.type).toBe(folder);
    // The schema is a strict zod object whose `type` is the folder's name.
    const schema = provider.schema as z.ZodObject;
    expect(schema).toBeInstanceOf(z.ZodObject);
    expect(schema.shape.type?.safeParse(folder).success).toBe(true);
    expect(schema.shape.type?.safeParse(`${folder}x`).success).toBe(false);
    expect(schema.safeParse({ type: folder, notAnOption: 1 }).error?.issues.some((i) => i.code === 'unrecognized_keys')).toBe(true);
    expect(typeof provider.create).toBe('function');
    expect(provider.authorize === null || typeof provider.authorize === 'function').toBe(true);
    expect(typeof provider.needsSignIn).toBe('function');
    // A provider with a sign-in has the files of one, and one without has none.
    const signsIn = provider.authorize !== null;
    expect(readdirSync(path.join(TARGETS, folder)).includes('auth.ts')).toBe(signsIn);
    // Path and secret keys name options the schema has.
    for (const key of provider.pathKeys as { key: string[]; what: string; role: string }[]) {
      expect(Object.keys(schema.shape)).toContain(key.key[0]);
      expect(['archive', 'credentials']).toContain(key.role);
      expect(key.what).toMatch(/^the /);
    }
    for (const key of provider.secretKeys as string[]) expect(Object.keys(schema.shape)).toContain(key.split('.')[0]);
  });

  test.each(folders)('%s/provider.ts loads no SDK: only zod and node built-ins until the target is made', (folder) => {
    const packages = [...packagesLoadedBy(path.join(TARGETS, folder, 'provider.ts'))];
    expect(packages.filter((p) => p !== 'zod' && !p.startsWith('node:'))).toEqual([]);
  });

  test('the laziness check sees an SDK: index.ts of every cloud loads one', () => {
    for (const folder of folders.filter((f) => readdirSync(path.join(TARGETS, f)).includes('transport.ts'))) {
      const packages = [...packagesLoadedBy(path.join(TARGETS, folder, 'index.ts'))];
      expect(packages.filter((p) => p !== 'zod' && !p.startsWith('node:')).length, folder).toBeGreaterThan(0);
    }
  });
});

describe('factories', () => {
  // Checked by the typecheck of `npm test` (tsc): a factory that takes its knobs another way fails to compile.
  test('every factory has the one signature (options, ctx, internals?)', () => {
    expectTypeOf(createBoxTarget).parameters.toEqualTypeOf<Parameters<TargetFactory<BoxOptions, BoxInternals>>>();
    expectTypeOf(createDropboxTarget).parameters.toEqualTypeOf<Parameters<TargetFactory<DropboxOptions, DropboxInternals>>>();
    expectTypeOf(createGdriveTarget).parameters.toEqualTypeOf<Parameters<TargetFactory<GdriveOptions, GdriveInternals>>>();
    expectTypeOf(createOnedriveTarget).parameters.toEqualTypeOf<Parameters<TargetFactory<OnedriveOptions, OnedriveInternals>>>();
    // No knobs: options and context only.
    expectTypeOf(createLocalTarget).toExtend<TargetFactory<LocalOptions>>();
    for (const f of [createBoxTarget, createDropboxTarget, createGdriveTarget, createOnedriveTarget, createLocalTarget]) {
      expectTypeOf(f).returns.toEqualTypeOf<Target>();
    }
  });
});
