import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { CONFIG_JSON_SCHEMA_PATH, configJsonSchema, renderConfigJsonSchema } from '../../src/config/json-schema.js';

const repo = path.resolve(import.meta.dirname, '../..');
const committed = path.join(repo, CONFIG_JSON_SCHEMA_PATH);

describe('config/stagecoach.schema.json', () => {
  test('equals the schema generated from the zod schema (run `npm run schema` after changing it)', () => {
    const fresh = renderConfigJsonSchema();
    // STAGECOACH_WRITE_SCHEMA=1 npx vitest run test/config/json-schema.test.ts rewrites the file.
    if (process.env.STAGECOACH_WRITE_SCHEMA === '1') fs.writeFileSync(committed, fresh);
    expect(fs.readFileSync(committed, 'utf8')).toBe(fresh);
  });

  test('describes what a person writes: strict objects, defaults, durations and sizes as strings', () => {
    const schema = configJsonSchema() as {
      $schema: string;
      additionalProperties: boolean;
      required: string[];
      properties: Record<string, any>;
    };
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(['roots', 'targets']);
    expect(schema.properties.stableMs).toMatchObject({ default: 2000, anyOf: [{ type: 'integer' }, { type: 'string' }] });
    expect(schema.properties.filters.properties.maxSize.default).toBeNull();
    expect(schema.properties.log.properties.level.enum).toEqual(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);
    const targets = schema.properties.targets.items.oneOf as { properties: { type: { const: string } }; additionalProperties: boolean }[];
    expect(targets.map((t) => t.properties.type.const)).toEqual(['local', 'gdrive', 'dropbox', 'box', 'onedrive']);
    expect(targets.every((t) => t.additionalProperties === false)).toBe(true);
    // Secrets have no default, anywhere.
    const secrets: unknown[] = [];
    const walk = (node: unknown): void => {
      if (node === null || typeof node !== 'object') return;
      const props = (node as { properties?: Record<string, unknown> }).properties ?? {};
      for (const [key, value] of Object.entries(props)) {
        if (['clientSecret', 'refreshToken', 'appSecret'].includes(key)) secrets.push(value);
      }
      Object.values(node).forEach(walk);
    };
    walk(schema);
    expect(secrets).toHaveLength(9);
    for (const secret of secrets) expect(secret).not.toHaveProperty('default');
  });
});
