/** The config module's public surface. */
export { loadConfig, parseConfig } from './load.js';
export type { Config, TargetConfig } from './schema.js';
export { parseDuration } from './units.js';
