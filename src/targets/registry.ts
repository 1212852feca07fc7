import { StagecoachError } from '../errors.js';
import type { Target, TargetContext } from './target.js';

/** A target's config as the registry needs it: its id and type, the rest is the provider's. */
export interface TargetConfigBase {
  id: string;
  type: string;
  [key: string]: unknown;
}

/** The config's `requestTimeoutMs` as the tuning the provider modules take (Drive reads it from its options). */
function timeoutOf(cfg: TargetConfigBase): { requestTimeoutMs?: number } {
  return typeof cfg.requestTimeoutMs === 'number' ? { requestTimeoutMs: cfg.requestTimeoutMs } : {};
}

/**
 * Makes a target from its config. Provider modules are imported lazily, so that a NAS that
 * archives only to a local folder never loads a cloud SDK.
 */
export async function createTarget(cfg: TargetConfigBase, ctx: TargetContext): Promise<Target> {
  switch (cfg.type) {
    case 'local': {
      const { createLocalTarget } = await import('./local/index.js');
      return createLocalTarget(cfg as unknown as Parameters<typeof createLocalTarget>[0], ctx);
    }
    case 'gdrive': {
      const { createGdriveTarget } = await import('./gdrive/index.js');
      return createGdriveTarget(cfg as unknown as Parameters<typeof createGdriveTarget>[0], ctx);
    }
    case 'dropbox': {
      const { createDropboxTarget } = await import('./dropbox/index.js');
      return createDropboxTarget(cfg as unknown as Parameters<typeof createDropboxTarget>[0], ctx, timeoutOf(cfg));
    }
    case 'onedrive': {
      const { createOnedriveTarget } = await import('./onedrive/index.js');
      return createOnedriveTarget(cfg as unknown as Parameters<typeof createOnedriveTarget>[0], ctx, timeoutOf(cfg));
    }
    case 'box': {
      const { createBoxTarget } = await import('./box/index.js');
      return createBoxTarget(cfg as unknown as Parameters<typeof createBoxTarget>[0], ctx, timeoutOf(cfg));
    }
    default:
      throw new StagecoachError('target.unknown', `[stagecoach] [${cfg.id}] unknown target type "${cfg.type}"`);
  }
}
