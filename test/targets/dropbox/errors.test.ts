/**
 * The Dropbox target's errors against the emulator: token expiry and refresh, revoked
 * credentials, throttling with Retry-After, a full account, refused names, folders in the way,
 * random faults, and no secret in any message or log line.
 */
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { TargetError } from '../../../src/errors.js';
import { createDropboxTarget } from '../../../src/targets/dropbox/index.js';
import type { PutRequest, Target } from '../../../src/targets/target.js';
import { captureLogger, dropboxOptions, type DropboxHarness } from '../../conformance/dropbox-harness.js';
import { request, seededBytes } from '../../conformance/sources.js';
import { CHUNK, MiB, SMALL, acceptedBytes, messages, put, rejectionOf, resumeStore, smallChunkHarness, tokenCalls, uploads } from './helpers.js';

let h: DropboxHarness;
afterEach(async () => {
  await h?.cleanup();
});

async function stored(path: string): Promise<Buffer | null> {
  return h.readBack(h.mapName!(path));
}

describe('dropbox tokens', () => {
  it('an expired access token is refreshed once for all the puts that hit it, and each is replayed', async () => {
    h = await smallChunkHarness();
    await h.target.put(request('warm/up.bin', seededBytes(1, 100)));
    expect(tokenCalls(h)).toHaveLength(1);
    h.emu.expireTokens();
    // One folder each: each put's lookup is its own request (puts into one folder share a listing).
    const files = Array.from({ length: 6 }, (_, i) => ({ path: `exp${i}/f.bin`, bytes: seededBytes(10 + i, 20_000 + i) }));
    await Promise.all(files.map((f) => h.target.put(request(f.path, f.bytes))));
    for (const f of files) expect((await stored(f.path))?.equals(f.bytes), f.path).toBe(true);
    expect(tokenCalls(h)).toHaveLength(2);
    expect(h.emu.server.requests().filter((r) => r.status === 401).length).toBeGreaterThanOrEqual(files.length);
  });

  it('a token expiring in the middle of a session: the chunk is replayed after one refresh', async () => {
    h = await smallChunkHarness();
    const bytes = seededBytes(2, 3 * CHUNK + 11);
    const res = await h.target.put(put('exp/big.bin', bytes, resumeStore(), { onSave: (_h, n) => n === 1 && h.emu.expireTokens() }));
    expect(res.bytesSent).toBe(bytes.length);
    expect((await stored('exp/big.bin'))?.equals(bytes)).toBe(true);
    expect(tokenCalls(h)).toHaveLength(2);
    expect(uploads(h).filter((r) => r.status === 401)).toHaveLength(1);
    expect(acceptedBytes(h)).toBe(bytes.length);
  });

  it('a download whose token expired is refreshed once and replayed, from its start (Range)', async () => {
    h = await smallChunkHarness();
    const bytes = seededBytes(4, 50_000);
    await h.target.put(request('dl/a.bin', bytes));
    h.emu.expireTokens();
    const d = (await h.target.download!({ remotePath: 'dl/a.bin', start: 20_000 }))!;
    const parts: Buffer[] = [];
    for await (const c of d.stream) parts.push(c as Buffer);
    expect(Buffer.concat(parts).equals(bytes.subarray(20_000))).toBe(true);
    expect(d.size).toBe(bytes.length);
    expect(tokenCalls(h)).toHaveLength(2);
    const downloads = h.emu.server.requests().filter((r) => r.url.includes('files/download'));
    expect(downloads.map((r) => r.status)).toEqual([401, 206]);
    expect(h.emu.downloads()).toMatchObject([{ range: 'bytes=20000-', status: 206, bytes: 30_000 }]);
    // From the end on: nothing left, the size still told.
    const end = (await h.target.download!({ remotePath: 'dl/a.bin', start: bytes.length }))!;
    expect(end.size).toBe(bytes.length);
    for await (const _ of end.stream) throw new Error('no bytes expected');
    await expect(h.target.download!({ remotePath: 'dl/a.bin', start: bytes.length + 1 })).rejects.toThrow(/start/);
    expect(await h.target.download!({ remotePath: 'dl/none.bin' })).toBeNull();
  });

  it('a download cancelled part way fails its stream rather than hang', async () => {
    h = await smallChunkHarness();
    const bytes = seededBytes(5, 8 * MiB);
    await h.target.put(request('dl/b.bin', bytes));
    const ac = new AbortController();
    const d = (await h.target.download!({ remotePath: 'dl/b.bin', signal: ac.signal }))!;
    let got = 0;
    await expect(
      (async () => {
        for await (const c of d.stream) {
          got += (c as Buffer).length;
          ac.abort();
        }
      })(),
    ).rejects.toThrow();
    expect(got).toBeLessThan(bytes.length);
  });

  it('the token request carries its secrets in the body, never in the URL', async () => {
    h = await smallChunkHarness();
    await h.target.put(request('t/a.bin', seededBytes(3, 10)));
    const calls = tokenCalls(h);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.url).toBe('/api/oauth2/token');
    expect(calls[0]!.status).toBe(200);
    expect(calls[0]!.bodyBytes).toBeGreaterThan(0);
  });

  it('revoked access: fatal, with a reason that says how to sign in again', async () => {
    h = await smallChunkHarness();
    await h.target.put(request('rev/a.bin', seededBytes(4, 10)));
    h.emu.revoke();
    const err = await rejectionOf(h.target, request('rev/b.bin', seededBytes(5, 10)));
    const c = h.target.classify(err);
    expect(c.kind).toBe('fatal');
    expect(c.reason).toMatch(/^auth-revoked: Dropbox answered 401 invalid_access_token/);
    expect(c.reason).toContain('stagecoach auth dropbox');
  });

  it('a revoked refresh token: the sign-in fails fatal (invalid_grant)', async () => {
    h = await smallChunkHarness();
    h.emu.revoke();
    const err = await rejectionOf(h.target, request('rev/c.bin', seededBytes(6, 10)));
    const c = h.target.classify(err);
    expect(c.kind).toBe('fatal');
    expect(c.reason).toMatch(/^auth-revoked: token endpoint answered 400 invalid_grant/);
    expect(c.reason).toContain('stagecoach auth dropbox');
  });

  it('a wrong app secret: fatal auth-client-refused', async () => {
    h = await smallChunkHarness();
    const options = { ...h.options, auth: { ...h.options.auth, appSecret: 'not-the-secret' } };
    const target = createDropboxTarget(options, { log: captureLogger(h.logs), stateDir: '/nonexistent' }, SMALL);
    const err = await rejectionOf(target, request('x/a.bin', seededBytes(7, 10)));
    expect(target.classify(err)).toMatchObject({ kind: 'fatal' });
    expect(target.classify(err).reason).toMatch(/^auth-client-refused: token endpoint answered 400 invalid_client/);
    await target.close();
  });

  it('a PKCE app (no secret) signs in and uploads', async () => {
    h = await smallChunkHarness({ pkce: true });
    expect(h.options.auth.appSecret).toBeUndefined();
    const bytes = seededBytes(8, 2 * CHUNK + 1);
    await h.target.put(request('pkce/a.bin', bytes));
    expect((await stored('pkce/a.bin'))?.equals(bytes)).toBe(true);
    expect(await h.target.check()).toMatch(/signed in to Dropbox as .*PKCE/);
  });
});

describe('dropbox throttling and failures', () => {
  it('429 too_many_write_operations: classified retry with its Retry-After; the target does not retry by itself', async () => {
    h = await smallChunkHarness();
    h.emu.throttle(1, { retryAfterS: 7 });
    const err = await rejectionOf(h.target, request('thr/a.bin', seededBytes(9, 1000)));
    expect(h.target.classify(err)).toMatchObject({ kind: 'retry', retryAfterMs: 7000 });
    expect(h.target.classify(err).reason).toMatch(/^rate-limited: Dropbox answered 429 too_many_write_operations/);
    expect(uploads(h)).toHaveLength(1);
    await h.target.put(request('thr/a.bin', seededBytes(9, 1000)));
    expect(await stored('thr/a.bin')).not.toBeNull();
  });

  it('a 500 is a retry', async () => {
    h = await smallChunkHarness();
    h.emu.server.faults.queue.push({ match: /\/files\/upload$/, fault: { kind: 'status', status: 500 } });
    const err = await rejectionOf(h.target, request('f/a.bin', seededBytes(10, 1000)));
    expect(h.target.classify(err)).toMatchObject({ kind: 'retry' });
    expect(h.target.classify(err).reason).toMatch(/^server-error: /);
  });

  it('a full account: fatal storage-full, nothing stored', async () => {
    h = await smallChunkHarness();
    h.emu.setQuota(50_000);
    for (const [path, size] of [['full/small.bin', 60_000], ['full/big.bin', CHUNK + 10]] as const) {
      const err = await rejectionOf(h.target, request(path, seededBytes(11, size)));
      const c = h.target.classify(err);
      expect(c.kind, path).toBe('fatal');
      expect(c.reason, path).toMatch(/^storage-full: Dropbox answered 409 path\/insufficient_space/);
      expect(await stored(path), path).toBeNull();
    }
  });

  it('names Dropbox refuses fail the item naming the rule; mappable ones are stored mapped', async () => {
    h = await smallChunkHarness();
    for (const [path, rule] of [['names/Thumbs.db', 'disallowed-name'], ['names/.DS_Store', 'disallowed-name'], ['names/nbsp\u00A0', 'trailing-whitespace']] as const) {
      const err = await rejectionOf(h.target, request(path, seededBytes(12, 10)));
      expect(h.target.classify(err), path).toMatchObject({ kind: 'fail-item' });
      expect(h.target.classify(err).reason.startsWith(`${rule}: `), path).toBe(true);
    }
    await h.target.put(request('names/back\\slash.txt', seededBytes(13, 10)));
    await h.target.put(request('names/trailing. ', seededBytes(14, 10)));
    expect((await h.listAll()).sort()).toEqual(['names/back\uFF3Cslash.txt', 'names/trailing.\u2420']);
    expect(h.emu.server.requests(/\/files\/upload$/).every((r) => r.status === 200)).toBe(true);
  });

  it('a folder where the file goes, or a file where a folder goes: fail-item path-blocked', async () => {
    h = await smallChunkHarness();
    await h.target.ensureFolder('blocked/dir');
    const e1 = await rejectionOf(h.target, request('blocked/dir', seededBytes(15, 10)));
    expect(h.target.classify(e1).reason).toMatch(/^path-blocked: /);
    expect(h.target.classify(e1).kind).toBe('fail-item');
    await h.target.put(request('blocked/file', seededBytes(16, 10)));
    const e2 = await rejectionOf(h.target, request('blocked/file/inner.bin', seededBytes(17, 10)));
    expect(h.target.classify(e2)).toMatchObject({ kind: 'fail-item' });
    expect(h.target.classify(e2).reason).toMatch(/^path-blocked: Dropbox answered 409 path\/conflict\/file_ancestor/);
  });

  it('ensureFolder makes the folder once, takes an existing one as success, and returns its id', async () => {
    h = await smallChunkHarness();
    const id1 = await h.target.ensureFolder('made/a/b');
    const id2 = await h.target.ensureFolder('MADE/A/B');
    expect(id1).toMatch(/^id:/);
    expect(id2).toBe(id1);
    expect(h.emu.server.requests(/create_folder_v2/)).toHaveLength(1);
    // Made behind the target's back (another target instance): a conflict that is success.
    const other = h.reopen();
    expect(await other.ensureFolder('made/a/b')).toBe(id1);
    expect(h.emu.folders()).toContain('/Stagecoach/made/a/b');
    expect(await h.target.ensureFolder('')).toMatch(/^id:/);
  });

  it('with 20 % of requests failing (429, 500, 503, resets) every file lands verified, and 429 waits are Dropbox\'s', async () => {
    h = await smallChunkHarness();
    h.emu.server.setFaults({
      rate: 0.2,
      mix: [
        { kind: 'status', status: 429, retryAfterS: 2, weight: 1 },
        { kind: 'status', status: 500, weight: 1 },
        { kind: 'status', status: 503, weight: 1 },
        { kind: 'reset', weight: 1 },
      ],
    });
    const files = Array.from({ length: 16 }, (_, i) => ({ path: `chaos/f${i}.bin`, bytes: seededBytes(100 + i, i % 4 === 0 ? CHUNK + 1000 * i : 3000 * i) }));
    const waits: number[] = [];
    let rateLimited = 0;
    await Promise.all(
      files.map(async (f) => {
        const store = resumeStore();
        for (let attempt = 0; ; attempt++) {
          expect(attempt, `${f.path}: attempts`).toBeLessThan(40);
          try {
            const res = await h.target.put(put(f.path, f.bytes, store));
            expect(res.size).toBe(f.bytes.length);
            return;
          } catch (err) {
            const c = h.target.classify(err);
            expect(c.kind, `${f.path}: ${c.reason}`).toBe('retry');
            if (c.reason.startsWith('rate-limited')) {
              rateLimited++;
              waits.push(c.retryAfterMs ?? -1);
            }
          }
        }
      }),
    );
    h.emu.server.clearFaults();
    for (const f of files) expect((await stored(f.path))?.equals(f.bytes), f.path).toBe(true);
    expect(rateLimited).toBeGreaterThan(0);
    expect(new Set(waits)).toEqual(new Set([2000]));
  });
});

describe('no secret in any error message or log line', () => {
  it('greps every message and log line of a faulty run for tokens and the secret', async () => {
    h = await smallChunkHarness();
    const texts: string[] = [];
    const note = (target: Target, err: unknown): void => {
      texts.push(messages(err), target.classify(err).reason, inspect(err, { depth: 8 }));
    };
    const attempt = async (target: Target, req: PutRequest): Promise<void> => {
      try {
        await target.put(req);
      } catch (err) {
        note(target, err);
      }
    };
    const big = seededBytes(20, CHUNK + 77);
    await attempt(h.target, request('leak/ok.bin', seededBytes(21, 10)));
    h.emu.throttle(1);
    await attempt(h.target, request('leak/throttled.bin', seededBytes(22, 10)));
    h.emu.server.faults.queue.push({ match: /append|finish/, fault: { kind: 'reset' } });
    await attempt(h.target, request('leak/reset.bin', big));
    h.emu.server.faults.queue.push({ match: /upload/, fault: { kind: 'status', status: 503 } });
    await attempt(h.target, request('leak/503.bin', big));
    h.emu.expireTokens();
    await attempt(h.target, request('leak/expired.bin', seededBytes(23, 10)));
    // The refresh itself cut off: the token request's failure must not show its parameters.
    h.emu.expireTokens();
    h.emu.server.faults.queue.push({ match: /oauth2\/token/, fault: { kind: 'reset' } });
    await attempt(h.target, request('leak/refresh-reset.bin', seededBytes(28, 10)));
    await attempt(h.target, request('leak/Thumbs.db', seededBytes(24, 10)));
    const badSecret = createDropboxTarget({ ...h.options, auth: { ...h.options.auth, appSecret: 'wrong-secret-value' } }, { log: captureLogger(h.logs), stateDir: '/x' }, SMALL);
    await attempt(badSecret, request('leak/bad.bin', seededBytes(25, 10)));
    h.emu.revoke();
    await attempt(h.target, request('leak/revoked.bin', seededBytes(26, 10)));
    const fresh = h.reopen();
    await attempt(fresh, request('leak/revoked2.bin', seededBytes(27, 10)));
    try {
      await fresh.check();
    } catch (err) {
      note(fresh, err);
    }
    await badSecret.close();

    if (process.env.SHOW_TEXTS) console.log(texts.filter((_t, i) => i % 3 !== 2).join('\n'));
    const all = [...texts, ...h.logs].join('\n');
    const { clientSecret, refreshToken } = h.emu.credentials;
    expect(all).toContain('auth-revoked');
    expect(all).not.toContain(refreshToken);
    expect(all).not.toContain(clientSecret);
    expect(all).not.toContain('wrong-secret-value');
    expect(all).not.toMatch(/sl\.at-/);
    expect(all).not.toMatch(/Bearer /i);
    expect(h.emu.server.requests(/oauth2/).every((r) => !r.url.includes('?'))).toBe(true);
    // The run did produce the failures it meant to look at.
    expect(texts.length).toBeGreaterThanOrEqual(27);
    expect(all).toMatch(/network: request to \S+oauth2\/token failed/);
  });
});

it('TargetError messages of this target start with the target id', async () => {
  h = await smallChunkHarness();
  const err = await rejectionOf(h.target, request('x/desktop.ini', seededBytes(1, 1)));
  expect(err).toBeInstanceOf(TargetError);
  expect((err as Error).message).toMatch(/^\[stagecoach\] \[dropbox\] disallowed-name: /);
  expect(MiB).toBe(1024 * 1024);
});

it('dropboxOptions points both hosts at the emulator', async () => {
  h = await smallChunkHarness();
  const o = dropboxOptions(h.emu);
  expect(o.endpoints).toEqual({ api: `${h.emu.url}/api`, content: `${h.emu.url}/content` });
});
