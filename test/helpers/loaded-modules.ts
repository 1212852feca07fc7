/**
 * A preload for a child process (`node --import=<file>`) that writes down every module the
 * process resolves, one URL a line, into the file named by $SC_LOADED_LOG (ESM, through a resolve
 * hook registered with `module.register`). `extra` is preload code run after it, with
 * `appendFileSync`, `module` (node:module) and `log` (the file) in scope.
 */
export function loadedModulesPreload(extra = ''): string {
  return `
import { appendFileSync } from 'node:fs';
import module from 'node:module';
const log = process.env.SC_LOADED_LOG;
module.register('data:text/javascript,' + encodeURIComponent(\`
  import { appendFileSync } from 'node:fs';
  let log;
  export function initialize(data) { log = data.log; }
  export async function resolve(specifier, context, next) {
    const r = await next(specifier, context);
    appendFileSync(log, r.url + '\\\\n');
    return r;
  }
\`), { data: { log } });
${extra}`;
}
