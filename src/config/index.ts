/** The config module's public surface. */
export { loadConfig, parseConfig, type LoadConfigOptions, type ParseConfigOptions } from './load.js';
export {
  configSchema,
  LOG_FORMATS,
  LOG_LEVELS,
  REMOTE_PATH_TOKENS,
  TARGET_TYPES,
  TEMP_NAME_GLOBS,
  type Config,
  type ConfigInput,
  type FiltersConfig,
  type LogFormat,
  type LogLevel,
  type RootConfig,
  type TargetConfig,
  type TargetType,
} from './schema.js';
export { parseDuration, parseSize } from './units.js';
export { configJsonSchema, renderConfigJsonSchema } from './json-schema.js';
