import { StagecoachError, TargetError } from '../errors.js';
import { providerOf, type ProviderConfigMap, type ProviderType, type TargetConfig } from './providers.js';
import type { Features, Target, TargetContext } from './target.js';
import { createUnavailableTarget } from './unavailable.js';

function createAs<K extends ProviderType>(type: K, cfg: ProviderConfigMap[K], ctx: TargetContext): Promise<Target> {
  return providerOf(type).create(cfg, ctx);
}

function nameKeyOf<K extends ProviderType>(type: K): ((remotePath: string) => string) | undefined {
  return providerOf(type).nameKey;
}

function checkSignedInAs<K extends ProviderType>(type: K, cfg: ProviderConfigMap[K], stateDir: string): void {
  providerOf(type).checkSignedIn?.(cfg, stateDir);
}

/**
 * Makes a target from its config entry, through its provider's factory, now: the provider's
 * modules (and its SDK) are imported here. For `check` and the CLI's one-off commands; the
 * daemon uses `createLazyTarget`.
 */
export function createTarget(cfg: TargetConfig, ctx: TargetContext): Promise<Target> {
  return createAs(cfg.type, cfg, ctx);
}

/**
 * A target whose provider's modules (and cloud SDK) are imported on its first network call
 * (put, stat, download, list, check, ensureFolder), so that a restart with nothing to send never
 * loads them. What is known without the SDK is known at once: `id`, `type`, `nameKey` (the
 * provider's names.ts). The first call makes the real target, once: concurrent first calls
 * share that one load. `features` and `classify` are the real target's once it is made.
 *
 * A target not signed in (the provider's `checkSignedIn`, no SDK needed) is known at once, as
 * when it was made at start. A load that fails is kept, as a factory failure at start was: a fatal TargetError (not signed
 * in, a credential refused) is logged by `onUnavailable` and the target answers every call with
 * it, classified fatal, so its uploader parks it with that reason; any other error is classified
 * fatal too (the target cannot be made until the config is fixed and the daemon restarted).
 */
export function createLazyTarget(cfg: TargetConfig, ctx: TargetContext, onUnavailable: (e: TargetError) => void): Target {
  let made: Target | null = null;
  let loading: Promise<Target> | null = null;
  let closed = false;
  // What can be known without the SDK is checked now: a target not signed in parks at start.
  try {
    checkSignedInAs(cfg.type, cfg, ctx.stateDir);
  } catch (e) {
    if (!(e instanceof TargetError && e.kind === 'fatal')) throw e;
    onUnavailable(e);
    made = createUnavailableTarget(cfg.id, cfg.type, e);
    loading = Promise.resolve(made);
  }
  const load = (): Promise<Target> => {
    loading ??= createTarget(cfg, ctx).then(
      (t) => {
        made = t;
        if (closed) void t.close().catch((err: unknown) => ctx.log.debug({ err }, 'closing a target made after close failed'));
        return t;
      },
      (e: unknown) => {
        if (e instanceof TargetError && e.kind !== 'fatal') {
          loading = null; // passing (a network hiccup while signing in): the next call tries again
          throw e;
        }
        const error = e instanceof TargetError ? e : new TargetError(cfg.id, 'fatal', `the target cannot be made: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
        onUnavailable(error);
        made = createUnavailableTarget(cfg.id, cfg.type, error);
        return made;
      },
    );
    return loading;
  };
  const nameKey = nameKeyOf(cfg.type);
  return {
    id: cfg.id,
    type: cfg.type,
    get features(): Features {
      if (made) return made.features;
      throw new StagecoachError('target.not-made', `[stagecoach] the features of ${cfg.id} are known once it made its first call`);
    },
    ...(nameKey ? { nameKey } : {}),
    put: async (req) => (await load()).put(req),
    stat: async (remotePath) => (await load()).stat(remotePath),
    ensureFolder: async (remotePath) => (await load()).ensureFolder(remotePath),
    // Deliveries were leased: their puts load the provider anyway.
    prepare: (remotePaths) => void load().then((t) => t.prepare?.(remotePaths), () => undefined),
    check: async () => (await load()).check(),
    download: async (req) => {
      const t = await load();
      if (!t.download) throw new StagecoachError('target.no-download', `[stagecoach] ${cfg.id} cannot be downloaded from`);
      return t.download(req);
    },
    list: async function* () {
      const t = await load();
      if (!t.list) throw new StagecoachError('target.no-list', `[stagecoach] ${cfg.id} cannot list its copies`);
      yield* t.list();
    },
    classify: (error) => {
      if (made) return made.classify(error);
      if (error instanceof TargetError) return { kind: error.kind, reason: error.message, ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }) };
      return { kind: 'fatal', reason: error instanceof Error ? error.message : String(error) };
    },
    close: async () => {
      closed = true;
      if (made) await made.close();
    },
  };
}
