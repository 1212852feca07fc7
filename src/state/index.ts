/**
 * The journal: the Store contract and its SQLite implementation. Nothing outside src/state/
 * speaks SQL; the pipeline depends on `Store` only.
 */
export type {
  ClaimResult,
  CompleteResult,
  RemoteClaim,
  RenamedRemote,
  Delivery,
  DeliveryRecord,
  DeliveryStatus,
  NewItem,
  Store,
  TargetCounts,
  TargetHealth,
} from './store.js';
export { openSqliteStore } from './sqlite-store.js';
export type { SqliteStore, SqliteStoreOptions } from './sqlite-store.js';
