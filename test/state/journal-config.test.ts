import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { describePgUrl, openJournal } from '../../src/state/index.js';
import { openPgStore } from '../../src/state/pg-store.js';
import { runCli } from '../helpers/daemon.js';
import { collectSecrets, redactString } from '../../src/telemetry/redact.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { newItem, tempDir } from './helpers.js';

const BASE = `
roots: [{ path: /srv/inbox }]
targets: [{ type: local, path: /srv/archive }]
`;

describe('journal: in the config', () => {
  it('defaults to null (SQLite under stateDir)', () => {
    expect(parseConfig(BASE, { env: {}, cwd: '/app', source: 't' }).journal).toBeNull();
  });

  it('takes a postgres url from the environment, and the url and its password are secrets in logs', () => {
    const url = 'postgres://stagecoach:s3cr%2Ft-pass@db.internal:5432/journal';
    const config = parseConfig(`${BASE}journal: { url: "\${PG_URL}" }\n`, { env: { PG_URL: url }, cwd: '/app', source: 't' });
    expect(config.journal).toEqual({ url, leaseMs: 60_000 });
    const secrets = collectSecrets(config);
    expect(secrets).toEqual(expect.arrayContaining([url, 's3cr/t-pass']));
    expect(redactString(`cannot reach ${url}; password s3cr/t-pass refused`, secrets)).toBe('cannot reach [redacted]; password [redacted] refused');
    expect(describePgUrl(url)).toBe('postgres://stagecoach:***@db.internal:5432/journal');
  });

  it('refuses a url that is not postgres:// without echoing it', () => {
    let error: unknown;
    try {
      parseConfig(`${BASE}journal: { url: "mysql://root:hunter22@db/x" }\n`, { env: {}, cwd: '/app', source: 't' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toMatch(/journal\.url/);
    expect((error as ConfigError).message).not.toContain('hunter22');
  });
});

describe('openJournal', () => {
  it('opens SQLite under stateDir without a journal url', async () => {
    const tmp = tempDir();
    const store = await openJournal({ stateDir: tmp.dir, journal: null });
    try {
      expect(store.kind).toBe('sqlite');
      expect(store.where).toBe(`${tmp.dir}/stagecoach.db`);
    } finally {
      await store.close();
      tmp.cleanup();
    }
  });

  it('opens PostgreSQL with a journal url, and what one daemon writes another reads', async () => {
    const db = await createTestDatabase(inject('pgUrl'));
    const tmp = tempDir();
    try {
      const a = await openJournal({ stateDir: tmp.dir, journal: { url: db.url } });
      const b = await openJournal({ stateDir: '/nonexistent', journal: { url: db.url } });
      try {
        expect(a.kind).toBe('postgres');
        await a.recordItems([newItem('a.txt')], ['local']);
        expect((await b.lease('local', 5)).map((d) => d.relPath)).toEqual(['a.txt']);
      } finally {
        await a.close();
        await b.close();
      }
    } finally {
      await db.drop();
      tmp.cleanup();
    }
  });

  it('a journal that cannot be reached: state.open-failed, the password not in the message', async () => {
    const err = await openJournal({ stateDir: '/x', journal: { url: 'postgres://u:topsecret99@127.0.0.1:1/db' } }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'state.open-failed' });
    expect((err as Error).message).toContain('postgres://u:***@127.0.0.1:1/db');
    expect((err as Error).message).not.toContain('topsecret99');
  });
});

describe('status on a shared journal', () => {
  it('lists the daemons with their heartbeat, uploads held and roots, in text and JSON', async () => {
    const db = await createTestDatabase(inject('pgUrl'));
    const tmp = tempDir();
    const node = await openPgStore({
      url: db.url,
      node: { name: 'nas-a', roots: new Map([['inbox', '/srv/inbox'], ['scans', '/mnt/scans']]), watches: ['inbox'] },
    });
    try {
      await node.recordItems([newItem('a'), newItem('b')], ['local']);
      await node.lease('local', 1);
      const cfg = path.join(tmp.dir, 'c.yaml');
      writeFileSync(cfg, `stateDir: ./state\njournal: { url: "\${JOURNAL_URL}" }\nroots: [{ path: ./inbox }]\ntargets: [{ type: local, path: ./archive }]\n`);
      const env = { JOURNAL_URL: db.url };
      const json = runCli(['status', '--json', '--config', cfg], { cwd: tmp.dir, env });
      expect(json.stderr).toBe('');
      const parsed = JSON.parse(json.stdout) as { targets: Array<{ target: string; pending: number; inFlight: number }>; nodes: unknown[] };
      expect(parsed.targets).toMatchObject([{ target: 'local', pending: 1, inFlight: 1 }]);
      expect(parsed.nodes).toEqual([
        { name: 'nas-a', roots: ['inbox', 'scans'], watches: ['inbox'], startedAt: expect.any(Number), lastSeen: expect.any(Number), leases: 1, alive: true },
      ]);
      const text = runCli(['status', '--config', cfg], { cwd: tmp.dir, env });
      expect(text.stdout).toMatch(/NODE\s+STATE\s+LAST HEARTBEAT\s+IN FLIGHT\s+READS\s+WATCHES/);
      expect(text.stdout).toMatch(/nas-a\s+up\s+\S+\s+1\s+inbox,scans\s+inbox/);
    } finally {
      await node.close();
      await db.drop();
      tmp.cleanup();
    }
  });
});
