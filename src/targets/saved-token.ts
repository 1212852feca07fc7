import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TargetError } from '../errors.js';

/** Where `stagecoach auth <id>` saves a refresh token: the target's own state folder. */
export function savedTokenFile(stateDir: string): string {
  return join(stateDir, 'refresh-token');
}

/**
 * The refresh token `stagecoach auth <id>` saved, for a target whose config names none. None
 * saved is fatal for the target (it parks, saying to run `stagecoach auth <id>`), never for the
 * daemon.
 */
export function readSavedToken(id: string, stateDir: string | undefined): string {
  if (stateDir !== undefined) {
    try {
      const token = readFileSync(savedTokenFile(stateDir), 'utf8').trim();
      if (token) return token;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new TargetError(id, 'fatal', `cannot read the saved refresh token: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, { code: 'auth.missing' });
      }
    }
  }
  throw new TargetError(id, 'fatal', `not signed in: no auth.refreshToken in the config and none saved; run \`stagecoach auth ${id}\``, {
    code: 'auth.missing',
  });
}
