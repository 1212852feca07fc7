/**
 * What a provider declares about itself, in src/targets/<id>/provider.ts, so that config/, cli/
 * and the registry iterate over the providers list (providers.ts) and name none of them: its
 * option schema, which option keys are paths and which are secrets, its factory and its sign-in.
 *
 * A provider.ts MUST import only zod, the config's building blocks, the kit's option fields and its
 * own names.ts:
 * it is loaded with the config, so anything it imports eagerly is loaded by every daemon. Its
 * `create` and `authorize` import the provider's SDK lazily (`await import('./index.js')`), so
 * a daemon that archives only to a local folder never loads a cloud SDK.
 */
import type { z } from 'zod';
import type { AuthIO, Target, TargetContext } from './target.js';

/** A provider's option schema: a strict object whose `type` is the provider's id. */
export type ProviderSchema = z.ZodObject<{ type: z.ZodLiteral<string> } & z.ZodRawShape, z.core.$strict>;

/** A target entry of the config as `loadConfig` resolves it: `id` and `minDemand` filled in. */
export type ProviderConfig<S extends ProviderSchema> = Omit<z.output<S>, 'id' | 'minDemand'> & { id: string; minDemand: number };

/**
 * An option that holds a path. `loadConfig` resolves it against the working directory and
 * refuses it inside a watched root: `archive` (the folder files are written to: it must not
 * contain a root either) or `credentials` (a key or token file).
 */
export interface PathKey {
  /** Where the option is inside the target's entry, e.g. `['auth', 'keyFile']`. Absent: ignored. */
  readonly key: readonly string[];
  /** How a message names it: "the key file". */
  readonly what: string;
  readonly role: 'archive' | 'credentials';
}

/** What a sign-in needs besides the terminal: the target's own state folder (tokens go there). */
export interface AuthContext {
  stateDir: string;
}

/** Everything about one provider. See the module comment for what may be imported eagerly. */
export interface Provider<S extends ProviderSchema> {
  /** The config's `type`, and the folder's name. */
  readonly type: z.output<S>['type'];
  /** The options of a target of this provider (zod, strict; messages name the key path). */
  readonly schema: S;
  /** The options that are paths. */
  readonly pathKeys: readonly PathKey[];
  /** The options that are secrets (dotted, e.g. `auth.clientSecret`): never shown in a message. */
  readonly secretKeys: readonly string[];
  /**
   * The target's `nameKey` (its names.ts, which loads no SDK), so that a target made lazily
   * (registry.ts, `createLazyTarget`) claims remote names before its SDK is loaded.
   */
  readonly nameKey?: (remotePath: string) => string;
  /**
   * Throws the fatal TargetError its factory would for a target not signed in (no refresh token
   * in the config or saved), without loading the SDK: a target made lazily parks at start with
   * that reason, as one made eagerly did. Absent: the factory checks nothing of the kind.
   */
  readonly checkSignedIn?: (config: ProviderConfig<S>, stateDir: string) => void;
  /** Makes the target; imports the provider's modules (and SDK) on first use. */
  create(config: ProviderConfig<S>, ctx: TargetContext): Promise<Target>;
  /**
   * `stagecoach auth <id>`: the headless sign-in, tokens saved under `ctx.stateDir`. Throws a
   * StagecoachError `cli.usage` when this target's kind of auth needs none; null when no target
   * of this provider ever signs in.
   */
  readonly authorize: ((config: ProviderConfig<S>, ctx: AuthContext, io: AuthIO) => Promise<void>) | null;
  /** Whether a person signs this target in (`stagecoach auth <id>`, the status page's "Connect"). */
  needsSignIn(config: ProviderConfig<S>): boolean;
}

/** Declares a provider (checks its shape, keeps its precise types). */
export function defineProvider<S extends ProviderSchema>(provider: Provider<S>): Provider<S> {
  return provider;
}
