/**
 * The journal: the Store contract, its SQLite implementation (the embedded default) and the way
 * to open the journal the config names. Nothing outside src/state/ speaks SQL; the pipeline
 * depends on `Store` only. pg-store.js is imported only through openJournal, so node-postgres
 * loads only when a PostgreSQL journal is configured.
 */
export type { Delivery, NewItem, Store } from './store.js';
export { openSqliteStore } from './sqlite-store.js';
export type { SqliteStore } from './sqlite-store.js';
export { describePgUrl, openJournal } from './open.js';
