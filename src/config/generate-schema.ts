/**
 * Writes config/stagecoach.schema.json from the zod schema.
 *
 *     npm run build && node dist/src/config/generate-schema.js [out-file]
 *
 * The output path defaults to config/stagecoach.schema.json under the working directory (npm
 * scripts run at the package root).
 */
import fs from 'node:fs';
import path from 'node:path';
import { CONFIG_JSON_SCHEMA_PATH, renderConfigJsonSchema } from './json-schema.js';

const out = path.resolve(process.argv[2] ?? CONFIG_JSON_SCHEMA_PATH);
fs.writeFileSync(out, renderConfigJsonSchema());
process.stdout.write(`[stagecoach] wrote ${out}\n`);
