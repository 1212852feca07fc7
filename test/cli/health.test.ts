import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, startDaemon } from '../helpers/daemon.js';
import { tempDir, waitFor } from '../helpers/fs.js';
import { CLOUDS, closeClouds, cloudsAndConfig } from '../e2e/clouds.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type StatusRow = { target: string; state: string; done: number; reason: string | null };

describe('health says what is happening within 15 s (issue 18)', () => {
  it('with every cloud unreachable: /healthz degraded naming the retry, the card and `status` say why; one warn per target; Ctrl-C does not wait out the back-off', async () => {
    const t = await tempDir();
    const { clouds, yaml, inbox } = await cloudsAndConfig(t.dir, 'http: { listen: "127.0.0.1:0" }\n');
    let cloudsOpen = true;
    cleanups.push(async () => {
      if (cloudsOpen) await closeClouds(clouds);
      await t.cleanup();
    });
    const cfg = path.join(t.dir, 'c.yaml');
    await writeFile(cfg, yaml.replace('log: { level: warn, format: json }', 'log: { level: info, format: json }'));
    const d = startDaemon(['run', '--config', cfg], { cwd: t.dir });
    cleanups.push(async () => {
      if (d.child.exitCode === null) d.child.kill('SIGKILL');
      await d.exited;
    });
    const status = (): StatusRow[] => {
      const r = spawnSync(process.execPath, [CLI, 'status', '--json', '--config', cfg], { cwd: t.dir, encoding: 'utf8' });
      return (JSON.parse(r.stdout) as { targets: StatusRow[] }).targets;
    };
    const url = await waitFor('the server url', () => /"url":"(http:\/\/127\.0\.0\.1:\d+)\/?"/.exec(d.output())?.[1], 20_000, 20);
    await waitFor('watching', () => d.output().includes('"msg":"watching"'), 20_000, 20);
    await writeFile(path.join(inbox, 'first.txt'), 'archived while the clouds are up');
    await waitFor('archived everywhere', () => status().every((r) => r.done === 1), 30_000, 100);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    // One info line per archived file (at most one a second per target).
    for (const c of CLOUDS) expect(d.output()).toContain(`"msg":"archived inbox/first.txt to ${c} (`);

    await closeClouds(clouds);
    cloudsOpen = false;
    await writeFile(path.join(inbox, 'second.txt'), 'no cloud can take this one');
    const stoppedAt = Date.now();
    const body = await waitFor(
      '/healthz degraded',
      async () => {
        const r = await fetch(`${url}/healthz`);
        if (r.status !== 503) return null;
        const b = (await r.json()) as { reasons: Array<{ target?: string; reason: string }> };
        return CLOUDS.every((c) => b.reasons.some((x) => x.target === c)) ? b : null;
      },
      15_000,
      100,
    );
    expect(Date.now() - stoppedAt).toBeLessThan(15_000);
    // The local target is fine, and not named.
    expect(body!.reasons.map((r) => r.target).sort()).toEqual([...CLOUDS].sort());
    for (const r of body!.reasons) expect(r.reason).toMatch(/^target \w+ is retrying: connection refused \(attempt \d+, next in \d+ s\)$/);

    const api = (await (await fetch(`${url}/api/status`)).json()) as { targets: Array<{ id: string; state: string; health: { reason: string | null; retryAt: number | null } }> };
    for (const c of CLOUDS) {
      const card = api.targets.find((x) => x.id === c)!;
      expect(card.state).toBe('running');
      expect(card.health.reason).toMatch(/^retrying: connection refused \(attempt \d+, next in \d+ s\)$/);
      expect(card.health.retryAt).toBeGreaterThan(stoppedAt);
    }
    const rows = status();
    for (const c of CLOUDS) expect(rows.find((r) => r.target === c)).toMatchObject({ state: 'retrying', reason: expect.stringMatching(/^retrying: connection refused/) });
    expect(rows.find((r) => r.target === 'local')).toMatchObject({ state: 'up', reason: null });

    // Let a few more attempts fail: still one warn per target, and the attempts themselves are not at info.
    await waitFor('attempt 3', () => /attempt 3,/.test(status().map((r) => r.reason ?? '').join()), 15_000, 200);
    const lines = d
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level: number; msg: string; target?: string });
    for (const c of CLOUDS) expect(lines.filter((l) => l.level === 40 && l.msg.startsWith(`${c} is failing (connection refused)`))).toHaveLength(1);
    expect(lines.filter((l) => l.level >= 30 && l.msg === 'upload attempt failed; retrying')).toEqual([]);

    // Ctrl-C: the uploads only sleep in back-off; they go back to pending at once, not at the shutdown deadline.
    d.child.kill('SIGINT');
    expect((await d.exited).code).toBe(0);
    expect(d.output()).not.toMatch(/shutdown deadline/);
  }, 90_000);
});
