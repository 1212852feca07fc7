/**
 * The stage runtime: GenStage-like producers, consumers and producer-consumers linked by
 * demand-driven subscriptions, their dispatchers, and a one_for_one supervisor. It knows nothing
 * of files. Semantics: docs/architecture.md.
 */
export type { Dispatch, Dispatcher, SubId } from './dispatcher.js';
export { DemandDispatcher } from './dispatchers/demand.js';
export { BroadcastDispatcher } from './dispatchers/broadcast.js';
export { Stage, type StageOptions } from './stage.js';
export { Producer, type ProducerOptions } from './producer.js';
export { Consumer, type ConsumerOptions } from './consumer.js';
export { ProducerConsumer, type ProducerConsumerOptions } from './producer-consumer.js';
export { subscribe, type Subscription } from './subscription.js';
export { ParkError, parkRequestOf, Supervisor, type Child, type ChildSpec } from './supervisor.js';
