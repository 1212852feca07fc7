import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { Config } from '../config/index.js';
import { StagecoachError } from '../errors.js';
import type { AuthContext } from '../targets/provider.js';
import { PROVIDERS, providerOf, type ProviderConfigMap, type ProviderType, type TargetConfig } from '../targets/providers.js';
import type { AuthIO } from '../targets/target.js';
import { EXIT } from './exit-codes.js';


/** The terminal: lines on stdout, answers read from stdin (works over `docker exec -it`). */
export function terminalIO(): AuthIO & { close(): void } {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  return {
    print: (line) => void process.stdout.write(`${line}\n`),
    prompt: (q) => rl.question(q),
    close: () => rl.close(),
  };
}

/**
 * `stagecoach auth <id>`: the headless sign-in of a cloud target, as on a NAS: print the address
 * (or the device code) to open on any computer, take what the user pastes back, and store the
 * tokens in the target's state folder (mode 0600), where the target finds them.
 */
export async function authCommand(config: Config, id: string | undefined, io: AuthIO): Promise<number> {
  const tc = config.targets.find((t) => t.id === id);
  if (!id || !tc) {
    const ids = config.targets.filter((t) => PROVIDERS[t.type].authorize !== null).map((t) => t.id);
    throw new StagecoachError('cli.usage', `auth needs the id of a cloud target in the config${ids.length ? ` (${ids.join(', ')})` : ': there is none'}`);
  }
  await signIn(tc, { stateDir: path.join(config.stateDir, 'targets', tc.id) }, io);
  return EXIT.ok;
}

function signInAs<K extends ProviderType>(type: K, tc: ProviderConfigMap[K], ctx: AuthContext, io: AuthIO): Promise<void> {
  const authorize = providerOf(type).authorize;
  if (authorize === null) throw new StagecoachError('cli.usage', `target "${tc.id}" is a ${type} target: it needs no sign-in`);
  return authorize(tc, ctx, io);
}

function signIn(tc: TargetConfig, ctx: AuthContext, io: AuthIO): Promise<void> {
  return signInAs(tc.type, tc, ctx, io);
}
