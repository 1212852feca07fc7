/**
 * The providers list: the one place that names every provider the config accepts. config/,
 * cli/ and the registry iterate over it. Adding a provider is one folder (src/targets/<id>/,
 * with the files docs/architecture.md lists) and one line here.
 */
import { provider as box } from './box/provider.js';
import { provider as dropbox } from './dropbox/provider.js';
import { provider as gdrive } from './gdrive/provider.js';
import { provider as local } from './local/provider.js';
import { provider as onedrive } from './onedrive/provider.js';
import type { Provider, ProviderConfig } from './provider.js';

/** Every provider, by its config `type`, in the order the docs and the JSON Schema show them. */
export const PROVIDERS = { local, gdrive, dropbox, box, onedrive } as const;

type Providers = typeof PROVIDERS;
/** The config's `type` of a target. */
export type ProviderType = keyof Providers;
/** The resolved config entry of each provider, by type. */
export type ProviderConfigMap = { [K in ProviderType]: ProviderConfig<Providers[K]['schema']> };
/** A target entry of the resolved config: the discriminated union over every provider. */
export type TargetConfig = ProviderConfigMap[ProviderType];

const BY_TYPE: { [K in ProviderType]: Provider<Providers[K]['schema']> } = PROVIDERS;

/**
 * The provider of `type`, typed by the config entry it takes. Called with an entry's own type
 * (`providerOf(tc.type).create(tc, …)` inside a function generic in the type), it narrows the
 * union without a cast.
 */
export function providerOf<K extends ProviderType>(type: K): Provider<Providers[K]['schema']> {
  return BY_TYPE[type];
}
