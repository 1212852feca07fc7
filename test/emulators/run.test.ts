import { afterAll, describe, expect, it } from 'vitest';
import { browseLines, faultMix, startAll } from './run.js';

describe('npm run emulators', () => {
  const started = startAll({ ports: { gdrive: 0, dropbox: 0, box: 0, onedrive: 0 } });
  afterAll(async () => {
    for (const e of Object.values(await started)) {
      await e.close();
      await e.blobs.destroy();
    }
  });

  it('starts all four on loopback, each answering its token endpoint with the demo credentials', async () => {
    const { gdrive, dropbox, box, onedrive } = await started;
    for (const e of [gdrive, dropbox, box, onedrive]) expect(e.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const form = (o: Record<string, string>) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(o).toString() });
    const g = await fetch(`${gdrive.url}/token`, form({ grant_type: 'refresh_token', refresh_token: 'demo-gdrive-refresh', client_id: 'demo-gdrive-client', client_secret: 'demo-gdrive-secret' }));
    expect(g.status).toBe(200);
    const d = dropbox.credentials;
    const dr = await fetch(`${dropbox.url}/oauth2/token`, form({ grant_type: 'refresh_token', refresh_token: d.refreshToken, client_id: d.clientId, client_secret: d.clientSecret }));
    expect(dr.status).toBe(200);
    const b = await fetch(`${box.url}/oauth2/token`, form({ grant_type: 'refresh_token', refresh_token: 'demo-box-refresh', client_id: box.clientId, client_secret: box.clientSecret }));
    expect(b.status).toBe(200);
    const o = await fetch(`${onedrive.url}/${onedrive.tenantId}/oauth2/v2.0/token`, form({ grant_type: 'refresh_token', refresh_token: 'demo-onedrive-refresh', client_id: 'demo-onedrive-client', scope: 'Files.ReadWrite offline_access' }));
    expect(o.status).toBe(200);
  });

  it('prints four browse addresses (what npm run demo shows), each a read-only HTML page of that cloud', async () => {
    const emus = await started;
    const text = browseLines(emus);
    const urls = [...text.matchAll(/http:\/\/127\.0\.0\.1:\d+\//g)].map((m) => m[0]);
    expect(urls).toEqual([emus.gdrive, emus.dropbox, emus.box, emus.onedrive].map((e) => `${e.url}/`));
    for (const u of urls) {
      const res = await fetch(u);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      expect(await res.text()).toContain('(emulated)');
    }
  });

  it('--fault-rate mixes throttling with Retry-After, server errors, resets and hangs', () => {
    const f = faultMix(0.2);
    expect(f.rate).toBe(0.2);
    expect(f.mix!.map((m) => m.kind).sort()).toEqual(['hang', 'reset', 'status', 'status', 'status']);
    expect(f.mix!.some((m) => m.kind === 'status' && m.status === 429 && m.retryAfterS !== undefined)).toBe(true);
  });
});
