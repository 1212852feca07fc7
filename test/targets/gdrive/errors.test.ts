/**
 * The Drive target's errors against the emulator: token expiry and revocation, throttling with
 * Retry-After, the daily upload cap, a full drive, server errors, and no secret in any error
 * or log line while all of that happens.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TargetError } from '../../../src/errors.js';
import type { Target } from '../../../src/targets/target.js';
import { seededBytes } from '../../conformance/sources.js';
import { startGdriveEmulator, type GdriveEmulator } from '../../emulators/gdrive/index.js';
import { CHUNK, answeredSource, errorText, makeTarget, put, rejected, resumeStore } from './helpers.js';

let emu: GdriveEmulator;

beforeEach(async () => {
  emu = await startGdriveEmulator({ seed: 5 });
});
afterEach(async () => {
  vi.useRealTimers();
  await emu.close();
});

const DAY = 24 * 60 * 60 * 1000;
const tokenRequests = (): number => emu.server.requests(/^\/token$/).length;
const refused = (): number => emu.server.requests().filter((r) => r.status === 401).length;

describe('access tokens', () => {
  it('a token refused before its expiry (401) is refreshed and the call replayed: lookups, multipart and resumable', async () => {
    const { target } = makeTarget(emu);
    await target.put(put('t/warm.bin', seededBytes(1, 10)));
    expect(tokenRequests()).toBe(1);
    emu.tokens.expireAll();
    // Into a folder not made yet: its lookup (files.list) is the request refused.
    await target.put(put('u/after-expiry.bin', seededBytes(2, 10)));
    expect(tokenRequests()).toBe(2);
    // A 401 on the multipart upload itself: its stream cannot be replayed, so the source is opened anew.
    emu.failNext('authError', { match: /^\/upload\// });
    const req = put('t/multipart.bin', seededBytes(3, 1000));
    await target.put(req);
    expect(req.opens).toEqual([0, 0]);
    expect(tokenRequests()).toBe(3);
    // A 401 on a resumable session start, then on its second chunk: replayed, the chunk from the buffer in hand.
    // (The second chunk's 401 is queued at the source's first read after Drive answered the first.)
    emu.failNext('authError', { match: /^\/upload\// });
    const big = seededBytes(4, 3 * CHUNK + 1);
    const onChunk2 = () => emu.failNext('authError', { match: /^\/upload\// });
    const res = await target.put(put('t/resumable.bin', big, undefined, { open: answeredSource(big, emu, 1, onChunk2) }));
    expect(res.size).toBe(big.length);
    expect(refused()).toBe(4);
    const refusedUploads = emu.server.requests(/^\/upload\//).filter((r) => r.status === 401);
    expect(refusedUploads.map((r) => [r.method, r.contentRange])).toEqual([
      ['POST', null],
      ['POST', null],
      ['PUT', `bytes ${CHUNK}-${2 * CHUNK - 1}/${big.length}`],
    ]);
    expect((await emu.read('/Stagecoach Archive/t/resumable.bin')).equals(big)).toBe(true);
  });

  it('the token is refreshed ahead of its expiry (5 min), so no request is refused', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { target } = makeTarget(emu);
    await target.put(put('e/one.bin', seededBytes(5, 10)));
    // Google's tokens live 3599 s; 4 min before that the token still works, but is renewed.
    vi.setSystemTime(Date.now() + (3599 - 240) * 1000);
    await target.put(put('e/two.bin', seededBytes(6, 10)));
    expect(tokenRequests()).toBe(2);
    vi.setSystemTime(Date.now() + 3 * 3600 * 1000);
    await target.put(put('e/three.bin', seededBytes(7, 2 * CHUNK)));
    expect(tokenRequests()).toBe(3);
    expect(refused()).toBe(0);
  });

  it('a revoked refresh token parks the target (fatal) with a reason that says what to run', async () => {
    emu.tokens.revoke();
    const { target } = makeTarget(emu);
    const err = await rejected(target.put(put('r/x.bin', seededBytes(8, 10))));
    expect(err).toBeInstanceOf(TargetError);
    const c = target.classify(err);
    expect(c.kind).toBe('fatal');
    expect(c.reason).toMatch(/^auth-revoked: the refresh token was revoked or expired: run `stagecoach auth gdrive`/);
    expect(errorText(err)).not.toContain(emu.refreshToken);
    expect(errorText(err)).not.toContain(emu.clientSecret);
  });

  it('a revocation in the middle of a run is fatal on the next put', async () => {
    const { target } = makeTarget(emu);
    await target.put(put('r/ok.bin', seededBytes(9, 10)));
    emu.tokens.revoke();
    const err = await rejected(target.put(put('r/after.bin', seededBytes(10, 10))));
    expect(target.classify(err)).toMatchObject({ kind: 'fatal' });
    expect(target.classify(err).reason).toMatch(/^auth-revoked: /);
  });

  it('a wrong client secret is fatal auth-client-refused', async () => {
    const { target } = makeTarget(emu, {}, { auth: { kind: 'oauth', clientId: emu.clientId, clientSecret: 'wrong', refreshToken: emu.refreshToken } });
    const err = await rejected(target.put(put('r/y.bin', seededBytes(11, 10))));
    expect(target.classify(err)).toMatchObject({ kind: 'fatal' });
    expect(target.classify(err).reason).toMatch(/^auth-client-refused: /);
  });
});

describe('throttling and quotas', () => {
  async function failWith(target: Target, p: string, size = 10): Promise<ReturnType<Target['classify']>> {
    return target.classify(await rejected(target.put(put(p, seededBytes(12, size)))));
  }

  it('429 with Retry-After → retry after that many seconds; the next attempt goes through', async () => {
    const { target } = makeTarget(emu);
    emu.failNext('tooManyRequests', { retryAfterS: 7 });
    expect(await failWith(target, 'q/a.bin')).toMatchObject({ kind: 'retry', retryAfterMs: 7000 });
    await target.put(put('q/a.bin', seededBytes(12, 10)));
  });

  it('403 "User Rate Limit Exceeded" (the per-user request rate) → retry, with Retry-After when given', async () => {
    const { target } = makeTarget(emu);
    emu.failNext('userRateLimitExceeded', { retryAfterS: 3 });
    const c = await failWith(target, 'q/b.bin');
    expect(c).toMatchObject({ kind: 'retry', retryAfterMs: 3000 });
    expect(c.reason).toMatch(/^rate-limited: /);
    emu.failNext('rateLimitExceeded');
    const plain = await failWith(target, 'q/b.bin');
    expect(plain.kind).toBe('retry');
    expect(plain.retryAfterMs).toBeUndefined();
  });

  it('the daily upload cap ("User rate limit exceeded.") → fatal, parked for 24 h', async () => {
    const { target } = makeTarget(emu);
    await target.put(put('cap/first.bin', seededBytes(13, 5000)));
    emu.setDailyCap(5000);
    for (const size of [10, 3 * CHUNK]) {
      const c = await failWith(target, `cap/next-${size}.bin`, size);
      expect(c).toMatchObject({ kind: 'fatal', retryAfterMs: DAY });
      expect(c.reason).toMatch(/^daily-upload-cap: /);
    }
    emu.resetDailyUsage();
    await target.put(put('cap/next-10.bin', seededBytes(12, 10)));
  });

  it('the daily-cap park time follows dailyCapParkMs', async () => {
    const { target } = makeTarget(emu, { dailyCapParkMs: 3_600_000 });
    emu.failNext('dailyUploadCap');
    expect(await failWith(target, 'cap/x.bin')).toMatchObject({ kind: 'fatal', retryAfterMs: 3_600_000 });
  });

  it('a full drive → fatal storage-full', async () => {
    emu.setStorageQuota(100);
    const { target } = makeTarget(emu);
    const c = await failWith(target, 'full/a.bin', 1000);
    expect(c.kind).toBe('fatal');
    expect(c.reason).toMatch(/^storage-full: /);
  });

  it('5xx and a dropped connection → retry', async () => {
    const { target } = makeTarget(emu);
    emu.failNext('backendError');
    expect((await failWith(target, 'x/a.bin')).reason).toMatch(/^server-error: /);
    emu.server.setFaults({ queue: [{ match: /^\/drive\//, fault: { kind: 'status', status: 503, retryAfterS: 2 } }] });
    expect(await failWith(target, 'x/a.bin')).toMatchObject({ kind: 'retry', retryAfterMs: 2000 });
    emu.server.setFaults({ queue: [{ match: /^\/drive\//, fault: { kind: 'reset' } }] });
    const c = await failWith(target, 'x/a.bin');
    expect(c.kind).toBe('retry');
    expect(c.reason).toMatch(/^network: /);
  });
});

describe('no retries of their own', () => {
  it('a token endpoint answering 503 is asked once (the auth library\'s retries are off) and classified retry', async () => {
    emu.server.setFaults({ queue: [{ match: /^\/token$/, fault: { kind: 'status', status: 503, retryAfterS: 5, body: { error: 'temporarily_unavailable' } } }] });
    const { target } = makeTarget(emu);
    const err = await rejected(target.put(put('n/a.bin', seededBytes(20, 10))));
    expect(target.classify(err)).toMatchObject({ kind: 'retry', retryAfterMs: 5000 });
    expect(target.classify(err).reason).toMatch(/^token-endpoint: /);
    expect(emu.server.requests(/^\/token$/)).toHaveLength(1);
  });

  it('a failed API call or upload is sent once (the SDK\'s retries are off)', async () => {
    const { target } = makeTarget(emu);
    await target.put(put('n/warm.bin', seededBytes(21, 10)));
    const before = emu.server.requests().length;
    emu.failNext('backendError', { match: /^\/upload\// });
    await rejected(target.put(put('n/b.bin', seededBytes(22, 10))));
    const sent = emu.server.requests().slice(before);
    expect(sent.filter((r) => r.url.startsWith('/upload/'))).toHaveLength(1);
  });
});

describe('secrets stay out of errors and logs', () => {
  it('under random 429/5xx/resets, token expiry and a revocation, no token, secret or session URI shows', async () => {
    const { target, logs } = makeTarget(emu);
    const errors: unknown[] = [];
    const reasons: string[] = [];
    emu.server.setFaults({
      rate: 0.3,
      mix: [
        { kind: 'status', status: 429, retryAfterS: 1, weight: 1 },
        { kind: 'status', status: 500, weight: 1 },
        { kind: 'status', status: 503, weight: 1 },
        { kind: 'reset', weight: 1 },
      ],
    });
    let done = 0;
    for (let i = 0; i < 12; i++) {
      if (i === 5) emu.tokens.expireAll();
      if (i === 8) emu.failNext('authError', { times: 2 });
      const bytes = seededBytes(100 + i, i % 3 === 0 ? 3 * CHUNK + i : 1000 + i);
      const store = resumeStore();
      // Bounded: a put is tried at most 8 times, as a pacer would.
      for (let attempt = 0; attempt < 8; attempt++) {
        try {
          await target.put(put(`faults/f${i}.bin`, bytes, store));
          done++;
          break;
        } catch (err) {
          errors.push(err);
          reasons.push(target.classify(err).reason);
          expect(target.classify(err).kind).toBe('retry');
        }
      }
    }
    emu.server.clearFaults();
    emu.tokens.revoke();
    emu.tokens.expireAll();
    const last = await rejected(target.put(put('faults/revoked.bin', seededBytes(1, 10))));
    errors.push(last);
    reasons.push(target.classify(last).reason);

    expect(done).toBeGreaterThan(6);
    expect(errors.length).toBeGreaterThan(3);
    const everything = [...errors.map(errorText), ...reasons, ...logs].join('\n');
    expect(everything).not.toContain(emu.refreshToken);
    expect(everything).not.toContain(emu.clientSecret);
    expect(everything).not.toMatch(/ya29\.at-/);
    expect(everything).not.toMatch(/upload_id=(?!\[redacted\])/);
    for (const s of emu.uploadSessions()) expect(everything).not.toContain(s.id);
  });
});
