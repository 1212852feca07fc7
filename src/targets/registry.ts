import { providerOf, type ProviderConfigMap, type ProviderType, type TargetConfig } from './providers.js';
import type { Target, TargetContext } from './target.js';

function createAs<K extends ProviderType>(type: K, cfg: ProviderConfigMap[K], ctx: TargetContext): Promise<Target> {
  return providerOf(type).create(cfg, ctx);
}

/**
 * Makes a target from its config entry, through its provider's factory. Provider modules are
 * imported lazily, so that a NAS that archives only to a local folder never loads a cloud SDK.
 */
export function createTarget(cfg: TargetConfig, ctx: TargetContext): Promise<Target> {
  return createAs(cfg.type, cfg, ctx);
}
