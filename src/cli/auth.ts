import { fstatSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { Config } from '../config/index.js';
import { StagecoachError } from '../errors.js';
import type { AuthContext } from '../targets/provider.js';
import { PROVIDERS, providerOf, type ProviderConfigMap, type ProviderType, type TargetConfig } from '../targets/providers.js';
import type { AuthIO } from '../targets/target.js';
import { EXIT } from './exit-codes.js';


/** The one line `auth` answers when nobody can type the answer it asks for. */
export function noTerminalMessage(id: string | undefined): string {
  const cmd = `stagecoach auth ${id ?? '<target-id>'}`;
  return `auth needs a terminal to paste the sign-in answer into: run \`docker exec -it stagecoach ${cmd}\` (with -it), or \`${cmd}\` in a terminal, or use Connect on the status page`;
}

/**
 * Whether stdin can give an answer: a terminal, or a pipe or socket something writes into.
 * Not: /dev/null (`docker exec` without -i, a NAS's task scheduler), a closed descriptor, a file.
 */
export function stdinCanAnswer(): boolean {
  if (process.stdin.isTTY) return true;
  try {
    const st = fstatSync(0);
    return st.isFIFO() || st.isSocket();
  } catch {
    return false;
  }
}

/**
 * The terminal: lines on stdout, answers read from stdin (works over `docker exec -it`). A prompt
 * whose input ends before an answer rejects with StagecoachError `cli.no-terminal` (never
 * readline's "readline was closed").
 */
export function terminalIO(id?: string): AuthIO & { close(): void } {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  let closed = false;
  rl.once('close', () => (closed = true));
  const ended = () => new StagecoachError('cli.no-terminal', noTerminalMessage(id));
  return {
    print: (line) => void process.stdout.write(`${line}\n`),
    prompt: (q) => {
      if (closed) return Promise.reject(ended());
      return new Promise<string>((resolve, reject) => {
        const onClose = () => reject(ended());
        rl.once('close', onClose);
        rl.question(q).then(
          (answer) => {
            rl.off('close', onClose);
            resolve(answer);
          },
          () => reject(ended()),
        );
      });
    },
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

function needsSignInAs<K extends ProviderType>(type: K, tc: ProviderConfigMap[K]): boolean {
  return providerOf(type).needsSignIn(tc);
}

/** Whether `tc` is a cloud target that a person signs in (`stagecoach auth` asks something): its provider says. */
export function needsSignIn(tc: TargetConfig): boolean {
  return needsSignInAs(tc.type, tc);
}

/** What the status page's "Connect" needs: which targets can sign in, and the sign-in itself. */
export interface SignIn {
  can(id: string): boolean;
  /** `stagecoach auth <id>` through `io`, then the target is made again and started (no restart). */
  run(id: string, io: AuthIO): Promise<void>;
}

/**
 * The sign-in of the status page: the same as `stagecoach auth <id>` (same addresses, same token
 * files under stateDir), then `pipeline.reconnect(id)` so that the target starts at once.
 */
export function createSignIn(config: Config, pipeline: { reconnect(id: string): Promise<void> }): SignIn {
  const byId = new Map(config.targets.map((t) => [t.id, t]));
  return {
    can: (id) => {
      const tc = byId.get(id);
      return tc !== undefined && needsSignIn(tc);
    },
    run: async (id, io) => {
      await authCommand(config, id, io);
      await pipeline.reconnect(id);
    },
  };
}
