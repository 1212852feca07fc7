/**
 * The daemon's targets are made lazily (src/targets/registry.ts, `createLazyTarget`): the
 * provider's modules and SDK load on the first network call, once, and a target that cannot be
 * made parks with the reason a factory failure at start gave.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { TargetError } from '../../src/errors.js';
import type { TargetConfig } from '../../src/targets/providers.js';
import { createLazyTarget } from '../../src/targets/registry.js';
import { localPathKey } from '../../src/targets/local/names.js';
import { tempDir } from '../helpers/fs.js';

const log = pino({ level: 'silent' });
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function dir(): Promise<string> {
  const t = await tempDir();
  cleanups.push(t.cleanup);
  return t.dir;
}

const gdrive = (auth: Record<string, unknown>): TargetConfig =>
  ({ id: 'drive', type: 'gdrive', minDemand: 1, maxDemand: 4, remoteRoot: 'Stagecoach', auth }) as unknown as TargetConfig;

describe('a lazily made target', () => {
  it('not signed in: parks at once with the factory\'s reason, before any call loads the SDK', async () => {
    const stateDir = await dir();
    const unavailable: TargetError[] = [];
    const t = createLazyTarget(gdrive({ kind: 'oauth', clientId: 'c', clientSecret: 's' }), { log, stateDir }, (e) => unavailable.push(e));
    expect(unavailable.map((e) => e.message)).toEqual([expect.stringMatching(/not signed in: no auth\.refreshToken .*stagecoach auth drive/)]);
    const err = await t.stat('a.txt').catch((e: unknown) => e);
    expect(err).toBe(unavailable[0]);
    expect(t.classify(err)).toEqual({ kind: 'fatal', reason: unavailable[0]!.message });
    expect(unavailable).toHaveLength(1);
  });

  it('a factory that fails on the first call: concurrent first calls share the one load and its error, classified fatal', async () => {
    const stateDir = await dir();
    const unavailable: TargetError[] = [];
    const keyFile = path.join(stateDir, 'no-such-key.json');
    const t = createLazyTarget(gdrive({ kind: 'serviceAccount', keyFile }), { log, stateDir }, (e) => unavailable.push(e));
    expect(unavailable).toEqual([]); // nothing loaded yet
    const errors = await Promise.all([t.stat('a'), t.ensureFolder('b'), t.check()].map((p) => p.catch((e: unknown) => e)));
    expect(unavailable).toHaveLength(1);
    expect(unavailable[0]!.message).toContain('auth.keyFile');
    for (const e of errors) expect(e).toBe(unavailable[0]);
    expect(t.classify(errors[0])).toEqual({ kind: 'fatal', reason: unavailable[0]!.message });
  });

  it('local: its nameKey is known before the first call; the first calls make it once and work', async () => {
    const root = await dir();
    const archive = path.join(root, 'archive');
    await mkdir(archive);
    const cfg = { id: 'nas', type: 'local', minDemand: 1, maxDemand: 4, path: archive } as unknown as TargetConfig;
    const t = createLazyTarget(cfg, { log, stateDir: root }, () => expect.unreachable('the local target is made'));
    expect(t.nameKey?.('Café/A.txt')).toBe(localPathKey('Café/A.txt'));
    expect(() => t.features).toThrow(/known once it made its first call/);
    const body = Buffer.from('hello');
    const put = (remotePath: string) =>
      t.put({ remotePath, size: body.length, mtimeMs: Date.now(), open: () => Readable.from([body]), resume: null, saveResume: async () => undefined });
    const [a, b, none] = await Promise.all([put('x/a.txt'), put('x/b.txt'), t.stat('x/none.txt')]);
    expect([a.size, b.size, none]).toEqual([5, 5, null]);
    expect(await readFile(path.join(archive, 'x', 'b.txt'), 'utf8')).toBe('hello');
    expect(t.features.hashKind).toBe('sha256');
    const listed: string[] = [];
    for await (const e of t.list!()) listed.push(e.path);
    expect(listed.sort()).toEqual(['x/a.txt', 'x/b.txt']);
    await t.close();
  });
});
