import http from 'node:http';
import net from 'node:net';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { startHttpServer, type HttpServer, type StatusBody } from '../../src/http/server.js';
import type { Pipeline } from '../../src/pipeline/topology.js';
import type { Target } from '../../src/targets/target.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { tempDir, waitFor } from '../helpers/fs.js';
import { harness } from '../pipeline/helpers.js';
import { createScriptedTarget, type ScriptedTarget } from '../pipeline/scripted-target.js';
import { parsePromText, sampleValue } from './prom-text.js';

const log = createLogger({ level: 'silent', format: 'json' });
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const CLOUD = `  - id: cloud
    type: local
    path: ./unused
    maxDemand: 2
supervisor: { coolDownMs: 60000 }
`;

async function setup(opts: { cloud?: boolean; token?: string; host?: string; allowedHosts?: string[]; failedAuthDelayMs?: number; logTo?: string[]; headersTimeoutMs?: number } = {}) {
  const t = await tempDir();
  const h = await harness(t.dir, opts.cloud ? CLOUD : '', { stableMs: 100 });
  const cloud: ScriptedTarget | undefined = opts.cloud ? createScriptedTarget('cloud') : undefined;
  const targets: Target[] = cloud ? [cloud] : [];
  const p: Pipeline = await h.start({ targets });
  const lines = opts.logTo;
  const logger = lines ? createLogger({ level: 'info', format: 'json', destination: new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }) }) : log;
  const server: HttpServer = await startHttpServer(p, {
    port: 0,
    log: logger,
    token: opts.token ?? null,
    host: opts.host,
    allowedHosts: opts.allowedHosts,
    failedAuthDelayMs: opts.failedAuthDelayMs,
    headersTimeoutMs: opts.headersTimeoutMs,
  });
  cleanups.push(async () => {
    cloud?.release();
    await server.close();
    await p.stop();
    await t.cleanup();
  });
  return { h, p, cloud, server };
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** node:http, so that tests can set Host and Origin as a browser or an attacker would. */
function request(base: string, p: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(p, base), { method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const counts = async (p: Pipeline, target: string) => (await p.store.counts()).find((c) => c.target === target);

describe('http server', () => {
  it('listens on 127.0.0.1 by default', async () => {
    const { server } = await setup();
    expect(new URL(server.url).hostname).toBe('127.0.0.1');
  });

  it('/metrics parses as Prometheus text and its counters move as files are archived', async () => {
    const { h, p, server } = await setup();
    const first = await request(server.url, '/metrics');
    expect(first.status).toBe(200);
    expect(first.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const before = parsePromText(first.body);
    expect(before.types.get('stagecoach_files_archived_total')).toBe('counter');
    expect(before.types.get('stagecoach_upload_duration_seconds')).toBe('histogram');
    expect(sampleValue(before.samples, 'stagecoach_files_archived_total', { target: 'local' })).toBe(0);
    expect(sampleValue(before.samples, 'stagecoach_target_parked', { target: 'local' })).toBe(0);

    const sizes = [5, 0, 1234];
    for (const [i, n] of sizes.entries()) await writeFile(path.join(h.inbox, `ünï ${i} ?.txt`), 'x'.repeat(n));
    await waitFor('3 done', async () => (await counts(p, 'local'))?.done === 3);

    const after = parsePromText((await request(server.url, '/metrics')).body).samples;
    expect(sampleValue(after, 'stagecoach_files_archived_total', { target: 'local' })).toBe(3);
    expect(sampleValue(after, 'stagecoach_bytes_archived_total', { target: 'local' })).toBe(1239);
    expect(sampleValue(after, 'stagecoach_upload_duration_seconds_count', { target: 'local' })).toBe(3);
    expect(sampleValue(after, 'stagecoach_upload_duration_seconds_bucket', { target: 'local', le: '+Inf' })).toBe(3);
    expect(sampleValue(after, 'stagecoach_backlog', { target: 'local' })).toBe(0);
    expect(sampleValue(after, 'stagecoach_in_flight', { target: 'local' })).toBe(0);
  });

  it('/metrics shows the backlog, the failures and the parked target', async () => {
    const { h, p, cloud, server } = await setup({ cloud: true });
    for (let i = 0; i < 4; i++) await writeFile(path.join(h.inbox, `f${i}.txt`), `file ${i}`);
    cloud!.script = () => ({ kind: 'fatal', reason: 'token revoked' });
    await waitFor('cloud parked', async () => (await p.store.health()).find((x) => x.target === 'cloud')?.status === 'down');
    await waitFor('local done', async () => (await counts(p, 'local'))?.done === 4);
    const s = parsePromText((await request(server.url, '/metrics')).body).samples;
    expect(sampleValue(s, 'stagecoach_target_parked', { target: 'cloud' })).toBe(1);
    expect(sampleValue(s, 'stagecoach_target_parked', { target: 'local' })).toBe(0);
    expect(sampleValue(s, 'stagecoach_backlog', { target: 'cloud' })).toBe(4);
    expect(sampleValue(s, 'stagecoach_files_archived_total', { target: 'cloud' })).toBe(0);
    expect(sampleValue(s, 'stagecoach_files_archived_total', { target: 'local' })).toBe(4);
  });

  it('/healthz is 200 while all runs, then 503 naming a parked target', async () => {
    const { h, p, cloud, server } = await setup({ cloud: true });
    const ok = await request(server.url, '/healthz');
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ ok: true, reasons: [] });

    cloud!.script = () => ({ kind: 'fatal', reason: 'token revoked' });
    await writeFile(path.join(h.inbox, 'a.txt'), 'a');
    await waitFor('cloud parked', async () => (await p.store.health()).find((x) => x.target === 'cloud')?.status === 'down');
    const bad = await request(server.url, '/healthz');
    expect(bad.status).toBe(503);
    const body = JSON.parse(bad.body) as { ok: boolean; reasons: Array<{ target?: string; reason: string }> };
    expect(body.ok).toBe(false);
    expect(body.reasons).toHaveLength(1);
    expect(body.reasons[0]).toMatchObject({ check: 'target', target: 'cloud' });
    expect(body.reasons[0]!.reason).toMatch(/cloud.*token revoked/);
    // A parked target says when it is tried next.
    expect(body.reasons[0]!.reason).toMatch(/; tried again at \d{4}-\d\d-\d\dT/);
  });

  it('/healthz is 503 once the pipeline is stopped', async () => {
    const { p, server } = await setup();
    await p.stop();
    const r = await request(server.url, '/healthz');
    expect(r.status).toBe(503);
    expect(r.body).toMatch(/pipeline is stopped/);
  });

  it('POST /api/targets/:id/retry-failed requeues the failed deliveries, and they are delivered', async () => {
    const { h, p, cloud, server } = await setup({ cloud: true });
    let broken = true;
    cloud!.script = (remotePath) => (broken && /f[13]\.txt$/.test(remotePath) ? { kind: 'fail-item', reason: 'name refused: rule X' } : 'ok');
    for (let i = 0; i < 4; i++) await writeFile(path.join(h.inbox, `f${i}.txt`), `file ${i}`);
    await waitFor('2 failed', async () => {
      const c = await counts(p, 'cloud');
      return c?.failed === 2 && c.done === 2;
    });
    const status = JSON.parse((await request(server.url, '/api/status')).body) as StatusBody;
    expect(status.failures.map((f) => [f.target, f.relPath, f.lastError]).sort()).toEqual([
      ['cloud', 'f1.txt', 'name refused: rule X'],
      ['cloud', 'f3.txt', 'name refused: rule X'],
    ]);

    broken = false;
    const r = await request(server.url, '/api/targets/cloud/retry-failed', { method: 'POST' });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ target: 'cloud', requeued: 2 });
    await waitFor('all done', async () => (await counts(p, 'cloud'))?.done === 4);
    expect(await counts(p, 'cloud')).toMatchObject({ failed: 0, pending: 0, done: 4 });
    expect((await cloud!.memory.listAll()).length).toBe(4);

    expect((await request(server.url, '/api/targets/nope/retry-failed', { method: 'POST' })).status).toBe(404);
    expect((await request(server.url, '/api/targets/cloud/retry-failed')).status).toBe(404);
  });

  it('POST /api/targets/:id/retry tries a parked target at once (the page\'s "Try now"); not parked: retried false', async () => {
    const { h, p, cloud, server } = await setup({ cloud: true });
    let revoked = true;
    cloud!.script = () => (revoked ? { kind: 'fatal', reason: 'credentials revoked' } : 'ok');
    await writeFile(path.join(h.inbox, 'f.txt'), 'x');
    await waitFor('parked', () => p.supervisor.status().cloud?.state === 'parked');
    // Parked for the 60 s cool-down; the user fixed the cause and asks for a try now.
    revoked = false;
    const r = await request(server.url, '/api/targets/cloud/retry', { method: 'POST' });
    expect(JSON.parse(r.body)).toEqual({ target: 'cloud', retried: true });
    await waitFor('delivered', async () => (await counts(p, 'cloud'))?.done === 1, 5_000);
    expect(JSON.parse((await request(server.url, '/api/targets/cloud/retry', { method: 'POST' })).body)).toEqual({ target: 'cloud', retried: false });
    expect((await request(server.url, '/api/targets/nope/retry', { method: 'POST' })).status).toBe(404);
  });

  it('/api/status reports per target counts, health, throughput and the last files', async () => {
    const { h, p, server } = await setup();
    for (let i = 0; i < 3; i++) await writeFile(path.join(h.inbox, `s${i}.txt`), 'abc');
    await waitFor('3 done', async () => (await counts(p, 'local'))?.done === 3);
    const s = JSON.parse((await request(server.url, '/api/status')).body) as StatusBody;
    expect(s.health.ok).toBe(true);
    expect(s.targets).toHaveLength(1);
    const t = s.targets[0]!;
    expect(t).toMatchObject({ id: 'local', type: 'local', state: 'running', counts: { pending: 0, inFlight: 0, done: 3, failed: 0 }, health: { status: 'up' } });
    expect(t.throughput).toHaveLength(60);
    expect(t.throughput.reduce((n, x) => n + x.files, 0)).toBe(3);
    expect(s.lastFiles.map((f) => f.relPath).sort()).toEqual(['s0.txt', 's1.txt', 's2.txt']);
  });

  it('GET / serves the status page', async () => {
    const { server } = await setup();
    const r = await request(server.url, '/');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/html/);
    expect(r.body).toMatch(/<title>Stagecoach<\/title>/);
    expect(r.body).not.toMatch(/<script>|<style>|\son[a-z]+=/i);
    expect(r.headers['content-security-policy']).toMatch(/script-src 'self'.*frame-ancestors 'none'/);
    expect(r.headers['x-frame-options']).toBe('DENY');
    expect(r.headers['referrer-policy']).toBe('no-referrer');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    const js = await request(server.url, '/app.js');
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
    expect(js.body).toContain("fetch('api/status'");
    expect(js.body).toContain('Retry failed');
    expect(js.body).toContain('retry-failed');
    const css = await request(server.url, '/app.css');
    expect(css.status).toBe(200);
    expect(css.headers['content-type']).toMatch(/^text\/css/);
  });

  it('with a token: 401 without it or with a wrong one; /healthz stays open but terse', async () => {
    const { h, p, cloud, server } = await setup({ token: 's3cret-0123456789abcdefghij', cloud: true });
    for (const route of ['/metrics', '/api/status']) {
      const none = await request(server.url, route);
      expect(none.status).toBe(401);
      expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
      expect((await request(server.url, route, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
      expect((await request(server.url, route, { headers: { authorization: 'Bearer s3cret-0123456789abcdefghij' } })).status).toBe(200);
    }
    expect((await request(server.url, '/api/targets/local/retry-failed', { method: 'POST' })).status).toBe(401);
    expect((await request(server.url, '/api/targets/local/retry-failed', { method: 'POST', headers: { authorization: 'Bearer s3cret-0123456789abcdefghij' } })).status).toBe(200);

    cloud!.script = () => ({ kind: 'fatal', reason: 'token revoked' });
    await writeFile(path.join(h.inbox, 'a.txt'), 'a');
    await waitFor('cloud parked', async () => (await p.store.health()).find((x) => x.target === 'cloud')?.status === 'down');
    const open = await request(server.url, '/healthz');
    expect(open.status).toBe(503);
    expect(open.body).toContain('cloud');
    expect(open.body).not.toContain('token revoked');
    const full = await request(server.url, '/healthz', { headers: { authorization: 'Bearer s3cret-0123456789abcdefghij' } });
    expect(full.body).toContain('token revoked');
  });

  it('refuses a foreign Host whatever the loopback address it is bound to, and answers the allowed names', async () => {
    // The old guard ran only for the literal binds 127.0.0.1, localhost and ::1.
    for (const host of ['127.0.0.2', 'localhost']) {
      const { server } = await setup({ host, allowedHosts: ['nas.local', '.home.lan'] });
      const port = new URL(server.url).port;
      const at = (name: string) => request(server.url, '/api/status', { headers: { host: `${name}:${port}` } });
      for (const foreign of ['evil.example', 'nas.local.evil.example', 'home.lan.evil.example', 'localhost.evil.example']) {
        const r = await at(foreign);
        expect(r.status, foreign).toBe(403);
        expect(r.body).toContain('http.allowedHosts');
      }
      expect((await request(server.url, '/', { headers: { host: 'evil.example' } })).status).toBe(403);
      expect((await request(server.url, '/healthz', { headers: { host: 'evil.example' } })).status).toBe(403);
      for (const ok of ['localhost', 'nas.local', 'NAS.local.', 'home.lan', 'box.home.lan', '192.168.1.20', '[fe80::1]', 'app.localhost']) {
        expect((await at(ok)).status, ok).toBe(200);
      }
    }
  });

  it('refuses to start without a token on a non-loopback address, and with a short token', async () => {
    const t = await tempDir();
    cleanups.push(t.cleanup);
    const h = await harness(t.dir, '', { stableMs: 100 });
    const p = await h.start({ targets: [] });
    cleanups.push(() => p.stop());
    await expect(startHttpServer(p, { port: 0, log, host: '0.0.0.0' })).rejects.toThrow(/http\.listen is 0\.0\.0\.0.*http\.token is not set/);
    await expect(startHttpServer(p, { port: 0, log, token: 'x'.repeat(23) })).rejects.toThrow(/23 characters long; it must have at least 24/);
  });

  it('a wrong token is slowed and logged, at most one line a minute with the count; a missing one is not', async () => {
    const lines: string[] = [];
    const { server } = await setup({ token: 'k'.repeat(32), failedAuthDelayMs: 300, logTo: lines });
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      const r = await request(server.url, '/api/status', { headers: { authorization: `Bearer guess-${i}` } });
      expect(r.status).toBe(401);
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    }
    const started = Date.now();
    expect((await request(server.url, '/api/status')).status).toBe(401);
    expect(Date.now() - started).toBeLessThan(290);
    const warned = lines.filter((l) => l.includes('wrong http token'));
    expect(warned).toHaveLength(1);
    expect(warned[0]).not.toContain('guess-');
    expect(JSON.parse(warned[0]!)).toMatchObject({ failures: 1, path: '/api/status' });
  });

  it('a URL that cannot be decoded answers 400, and every answer carries the security headers', async () => {
    const { server } = await setup();
    for (const p of ['/api/targets/%E0%A4%A/retry-failed', '/%zz', '/api/targets/local%/retry-failed']) {
      const r = await request(server.url, p, { method: p.includes('retry') ? 'POST' : 'GET' });
      expect(r.status, p).toBe(400);
    }
    for (const p of ['/healthz', '/api/status', '/nope', '/%zz']) {
      const r = await request(server.url, p);
      expect(r.headers['content-security-policy'], p).toContain("frame-ancestors 'none'");
      expect(r.headers['x-frame-options'], p).toBe('DENY');
      expect(r.headers['x-content-type-options'], p).toBe('nosniff');
      expect(r.headers['referrer-policy'], p).toBe('no-referrer');
    }
  });

  it('closes a connection that sends nothing, or not all of its headers, within the headers timeout', async () => {
    const { server } = await setup({ headersTimeoutMs: 400 });
    const port = Number(new URL(server.url).port);
    const closed = (send: string) =>
      new Promise<number>((resolve) => {
        const started = Date.now();
        const s = net.connect({ host: '127.0.0.1', port }, () => s.write(send));
        s.on('error', () => undefined);
        s.once('close', () => resolve(Date.now() - started));
        cleanups.push(async () => void s.destroy());
      });
    // Bounded by the test's timeout; without the timeouts both would stay open for ever.
    const [silent, partial] = await Promise.all([closed(''), closed('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n')]);
    expect(silent).toBeLessThan(5_000);
    expect(partial).toBeLessThan(5_000);
  });

  it('refuses a foreign Host (DNS rebinding) and a cross-site POST', async () => {
    const { server } = await setup();
    const port = new URL(server.url).port;
    expect((await request(server.url, '/api/status', { headers: { host: `evil.example:${port}` } })).status).toBe(403);
    expect((await request(server.url, '/api/status', { headers: { host: `localhost:${port}` } })).status).toBe(200);
    const cross = await request(server.url, '/api/targets/local/retry-failed', { method: 'POST', headers: { origin: 'http://evil.example' } });
    expect(cross.status).toBe(403);
    const same = await request(server.url, '/api/targets/local/retry-failed', { method: 'POST', headers: { origin: `http://127.0.0.1:${port}` } });
    expect(same.status).toBe(200);
  });
});

describe('GET /api/search (issue 18: where is my file?)', () => {
  it('finds files by part of their path, case-insensitive, with each target\'s copy; % and _ match themselves; wants the token', async () => {
    const { h, p, server } = await setup({ token: 'search-token-0123456789abcdef' });
    for (const name of ['Holiday_2026.jpg', 'holiday-notes.txt', '100%.txt', 'other.txt']) await writeFile(path.join(h.inbox, name), name);
    await waitFor('archived', async () => (await p.store.counts()).find((c) => c.target === 'local')?.done === 4, 15_000, 50);
    const auth = { authorization: 'Bearer search-token-0123456789abcdef' };
    expect((await request(server.url, '/api/search?q=holiday')).status).toBe(401);

    const body = JSON.parse((await request(server.url, '/api/search?q=HOLIDAY', { headers: auth })).body) as {
      files: Array<{ relPath: string; size: number; deliveries: Array<{ target: string; status: string; remotePath: string; hash: string | null; verifiedAt: number | null; reason: string | null }> }>;
    };
    expect(body.files.map((f) => f.relPath)).toEqual(['Holiday_2026.jpg', 'holiday-notes.txt']);
    expect(body.files[0]!.size).toBe('Holiday_2026.jpg'.length);
    expect(body.files[0]!.deliveries).toEqual([
      { target: 'local', status: 'done', remotePath: 'inbox/Holiday_2026.jpg', hash: expect.stringMatching(/^[0-9a-f]{64}$/), verifiedAt: expect.any(Number), reason: null, attempts: expect.any(Number) },
    ]);
    const names = async (q: string) => (JSON.parse((await request(server.url, `/api/search?q=${encodeURIComponent(q)}`, { headers: auth })).body) as { files: Array<{ relPath: string }> }).files.map((f) => f.relPath);
    expect(await names('y_2')).toEqual(['Holiday_2026.jpg']);
    expect(await names('%')).toEqual(['100%.txt']);
    expect(await names('')).toEqual([]);
  });
});

