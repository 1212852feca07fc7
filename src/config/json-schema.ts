/**
 * The JSON Schema of the config file, generated from the zod schema (zod 4's toJSONSchema, the
 * input side: what a person writes, before defaults and conversions). Editors use it for
 * completion and hover docs through `# yaml-language-server: $schema=./stagecoach.schema.json`.
 * config/stagecoach.schema.json is this output, committed; a test keeps the two equal.
 */
import { z } from 'zod';
import { configSchema } from './schema.js';

/** Where the committed copy lives, relative to the package root. */
export const CONFIG_JSON_SCHEMA_PATH = 'config/stagecoach.schema.json';

/** The JSON Schema (draft-07, the version editors' YAML plugins support best). */
export function configJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(configSchema, {
    io: 'input',
    target: 'draft-07',
    // zod leaves out defaults of converted values (durations, sizes); editors should show them.
    override: ({ zodSchema, jsonSchema }) => {
      const def = zodSchema._zod.def;
      if (def.type === 'default' && jsonSchema.default === undefined) {
        jsonSchema.default = (def as { defaultValue: unknown }).defaultValue;
      }
    },
  }) as Record<string, unknown>;
  const { $schema, ...rest } = generated;
  return {
    $schema,
    title: 'Stagecoach configuration',
    description: 'Watches folders and archives every new or changed file to Google Drive, Dropbox, Box, OneDrive and local folders.',
    ...rest,
  };
}

/** The committed file's exact text: two-space JSON and a final newline. */
export function renderConfigJsonSchema(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}
