/**
 * The browse page every emulator serves at its root URL (test/emulators/harness/browse.ts): a
 * file archived through the product's target shows with its size and the provider's hash; names
 * are escaped; Box's versions are listed; the page is read-only HTML with a CSP.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { boxHarness } from '../conformance/box-harness.js';
import { dropboxHarness } from '../conformance/dropbox-harness.js';
import { gdriveHarness } from '../conformance/gdrive-harness.js';
import { onedriveHarness } from '../conformance/onedrive-harness.js';
import { request, seededBytes } from '../conformance/sources.js';
import type { SuiteHarness } from '../conformance/target-suite.js';
import { startBoxEmulator } from './box/index.js';
import { escapeHtml, renderBrowse } from './harness/browse.js';
import type { Emulator } from './harness/index.js';

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

async function page(url: string, method = 'GET'): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(`${url}/`, { method });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

const harnesses: Array<[string, () => Promise<SuiteHarness & { emu: Emulator }>]> = [
  ['gdrive', () => gdriveHarness()],
  ['dropbox', () => dropboxHarness()],
  ['box', () => boxHarness()],
  ['onedrive', () => onedriveHarness()],
];

describe('browse page at the root URL', () => {
  for (const [name, make] of harnesses) {
    it(`${name}: a file archived by the target shows with its folder, size and hash`, async () => {
      const h = await make();
      cleanup = () => h.cleanup();
      const bytes = seededBytes(3, 1234);
      await h.target.put(request('browse/hello.txt', bytes));
      const stored = (await h.emu.tree()).find((f) => f.path.endsWith('/browse/hello.txt'));
      expect(stored).toBeDefined();
      const p = await page(h.emu.url);
      expect(p.status).toBe(200);
      expect(p.headers.get('content-type')).toMatch(/^text\/html/);
      expect(p.headers.get('content-security-policy')).toContain("default-src 'none'");
      expect(p.text).toContain(`data-path="${escapeHtml(stored!.path)}"`);
      expect(p.text).toMatch(/class="folder" data-path="[^"]*\/browse"/);
      expect(p.text).toContain('<td class="num">1234</td>');
      expect(p.text).toContain(escapeHtml(stored!.hash));
    });
  }

  it('escapes names, lists every version Box keeps, answers HEAD, and changes nothing on POST', async () => {
    const emu = await startBoxEmulator();
    cleanup = () => emu.close();
    await emu.putFile('/odd/<script>alert("x")</script> & \'q\'.txt', Buffer.from('one'));
    await emu.putFile('/odd/<script>alert("x")</script> & \'q\'.txt', Buffer.from('two!'));
    const p = await page(emu.url);
    expect(p.text).not.toContain('<script>');
    expect(p.text).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;.txt');
    expect(p.text).toMatch(/<td class="hash">2: /);
    const head = await page(emu.url, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
    const post = await fetch(`${emu.url}/`, { method: 'POST', body: 'x' });
    expect(post.status).toBeGreaterThanOrEqual(400);
    expect((await emu.tree()).length).toBe(1);
  });

  it('renderBrowse: an empty cloud renders a page with no rows', () => {
    const html = renderBrowse({ title: 'T <b>', hashName: 'h' }, []);
    expect(html).toContain('<title>T &lt;b&gt;</title>');
    expect(html).toContain('0 files, 0 folders');
  });
});
