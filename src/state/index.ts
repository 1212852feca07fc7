/**
 * The journal: the Store contract and its SQLite implementation. Nothing outside src/state/
 * speaks SQL; the pipeline depends on `Store` only.
 */
export type {
  CompleteResult,
  Delivery,
  DeliveryRecord,
  DeliveryStatus,
  NewItem,
  NodeInfo,
  Store,
  TargetCounts,
  TargetHealth,
} from './store.js';
export { openSqliteStore } from './sqlite-store.js';
export type { SqliteStore, SqliteStoreOptions } from './sqlite-store.js';
// pg-store.js is imported only through openJournal, so node-postgres loads only when configured.
export type { NodeOptions, PgStore, PgStoreOptions } from './pg-store.js';
export { describePgUrl, openJournal } from './open.js';
export type { JournalConfig, OpenJournal } from './open.js';
