/**
 * The journal: the Store contract and its SQLite implementation. Nothing outside src/state/
 * speaks SQL; the pipeline depends on `Store` only.
 */
export type { Delivery, NewItem } from './store.js';
export { openSqliteStore } from './sqlite-store.js';
export type { SqliteStore } from './sqlite-store.js';
