import { StagecoachError } from '../errors.js';
import type { Dispatcher, SubId } from './dispatcher.js';
import { CTX, INBOX, OUTBOX, type StageContext, type StageState } from './stage.js';

/**
 * One consumer's subscription to one producer, as made by `subscribe`. The counters are the
 * consumer's view: `asked` (cumulative demand sent), `received` (events that arrived),
 * `acknowledged` (events whose callback settled). Always `received <= asked`.
 */
export interface Subscription {
  readonly id: SubId;
  readonly producer: string;
  readonly consumer: string;
  readonly minDemand: number;
  readonly maxDemand: number;
  /** False once cancelled, from either end or by a stop or crash. */
  readonly active: boolean;
  readonly asked: number;
  readonly received: number;
  readonly acknowledged: number;
  /**
   * Ends the subscription at once: the consumer asks no more and the producer assigns it nothing
   * more (its unmet demand is forgotten). Events already on their way are still handled.
   * Idempotent.
   */
  cancel(): void;
}

export interface SubscribeOptions {
  /** Most events the consumer holds unacknowledged from this producer. Default 1000. */
  maxDemand?: number;
  /** Re-ask once held-or-owed events drop to this. Default floor(maxDemand / 2); 0 <= min < max. */
  minDemand?: number;
  /** The subscriber's id within the producer (dispatchers key on it). Default: the consumer's name. */
  id?: SubId;
}

/** A stage that consumes E: a Consumer<E> or a ProducerConsumer<E, _>. */
export interface Sink<E> {
  readonly name: string;
  readonly state: StageState;
  /** @internal */
  readonly [CTX]: StageContext;
  /** @internal */
  readonly [INBOX]: Inbox<E>;
}

/** A stage that produces E: a Producer<E> or a ProducerConsumer<_, E>. */
export interface Source<E> {
  readonly name: string;
  readonly state: StageState;
  /** @internal */
  readonly [CTX]: StageContext;
  /** @internal */
  readonly [OUTBOX]: Outbox<E>;
}

/**
 * Subscribes `consumer` to `producer`. The consumer asks `maxDemand` as soon as both have started
 * (at once if they have), then re-asks as described on `Inbox.ack` and in docs/architecture.md
 * §2.3. Throws `stage.invalid-demand`
 * for bad min/max, `stage.duplicate-subscriber` if the id is taken at the producer, and
 * `stage.not-running` if either stage has stopped or crashed.
 */
export function subscribe<E>(consumer: Sink<E>, producer: Source<E>, options: SubscribeOptions = {}): Subscription {
  const maxDemand = options.maxDemand ?? 1000;
  if (!Number.isSafeInteger(maxDemand) || maxDemand < 1) {
    throw new StagecoachError('stage.invalid-demand', `Expected \`maxDemand\` to be an integer >= 1, got ${String(maxDemand)}`);
  }
  const minDemand = options.minDemand ?? Math.floor(maxDemand / 2);
  if (!Number.isSafeInteger(minDemand) || minDemand < 0 || minDemand >= maxDemand) {
    throw new StagecoachError(
      'stage.invalid-demand',
      `Expected \`minDemand\` to be an integer >= 0 and < maxDemand (${maxDemand}), got ${String(minDemand)}`,
    );
  }
  for (const stage of [consumer, producer]) {
    if (stage.state === 'stopping' || stage.state === 'stopped' || stage.state === 'crashed') {
      throw new StagecoachError(
        'stage.not-running',
        `cannot subscribe ${consumer.name} to ${producer.name}: ${stage.name} is ${stage.state}`,
      );
    }
  }
  const link = new Link<E>(options.id ?? consumer.name, consumer[INBOX], producer[OUTBOX], minDemand, maxDemand);
  producer[OUTBOX].attach(link);
  consumer[INBOX].attach(link);
  consumer[CTX].bus?.emit('stage.subscribe', { producer: producer.name, consumer: consumer.name, minDemand, maxDemand });
  return link;
}

/** @internal The live wire between one producer and one consumer. */
export class Link<E> implements Subscription {
  active = true;
  asked = 0;
  received = 0;
  acknowledged = 0;

  constructor(
    readonly id: SubId,
    readonly inbox: Inbox<E>,
    readonly outbox: Outbox<E>,
    readonly minDemand: number,
    readonly maxDemand: number,
  ) {}

  get producer(): string {
    return this.outbox.ctx.name;
  }

  get consumer(): string {
    return this.inbox.ctx.name;
  }

  cancel(reason = 'cancel'): void {
    if (!this.active) return;
    this.active = false;
    this.outbox.detach(this);
    this.inbox.detach(this, reason);
  }
}

/** @internal A consumer's end: receives events, counts them, asks for more. */
export class Inbox<E> {
  readonly links = new Set<Link<E>>();

  constructor(
    readonly ctx: StageContext,
    private readonly onEvents: (link: Link<E>, events: E[]) => void,
    private readonly onCancel: (subscription: Subscription, reason: string) => void,
  ) {}

  attach(link: Link<E>): void {
    this.links.add(link);
    this.ctx.post(() => {
      if (link.active && this.ctx.running()) this.#ask(link, link.maxDemand);
    });
  }

  detach(link: Link<E>, reason: string): void {
    this.links.delete(link);
    this.ctx.post(() => {
      if (this.ctx.running()) this.onCancel(link, reason);
    });
  }

  /**
   * Messages are FIFO microtasks and a stop cancels synchronously, so whatever was sent before a
   * stop arrives before the stop's drain check: a stopping stage still handles it.
   */
  deliver(link: Link<E>, events: E[]): void {
    this.ctx.post(() => {
      // A crashed stage drops what reaches it: the events were never acknowledged.
      if (!this.ctx.live()) return;
      link.received += events.length;
      if (link.received > link.asked) {
        this.ctx.crash(
          new StagecoachError(
            'stage.over-delivery',
            `${link.producer} sent ${link.consumer} ${link.received} events, but only ${link.asked} were asked`,
          ),
        );
        return;
      }
      this.onEvents(link, events);
      this.ctx.checkDrain();
    });
  }

  /**
   * `n` events of `link` were handled. GenStage's rule: the credit is what was asked and not yet
   * acknowledged (events owed by the producer plus events held); once it is <= minDemand, ask
   * `maxDemand - credit`, so the credit is back to maxDemand. Only while running and subscribed.
   */
  ack(link: Link<E>, n: number): void {
    link.acknowledged += n;
    if (!link.active || !this.ctx.running()) return;
    const credit = link.asked - link.acknowledged;
    if (credit <= link.minDemand) this.#ask(link, link.maxDemand - credit);
  }

  cancelAll(reason: string): void {
    for (const link of [...this.links]) link.cancel(reason);
  }

  #ask(link: Link<E>, n: number): void {
    if (n <= 0) return;
    link.asked += n;
    this.ctx.bus?.emit('stage.ask', { producer: link.producer, consumer: link.consumer, demand: n });
    link.outbox.receiveAsk(link, n);
  }
}

/** @internal What an outbox calls on its stage. */
export interface OutboxHooks {
  /** New demand the buffer could not serve (the stage's handleDemand). */
  demand(n: number): void | Promise<void>;
  /** A subscriber's ask was recorded (the stage's handleSubscriberDemand). */
  subscriberDemand(sub: SubId, n: number): void;
  /** The dispatcher's availability may have grown. */
  demandChanged(): void;
}

/** @internal A producer's end: a dispatcher, a buffer and the demand owed upstream. */
export class Outbox<E> {
  readonly links = new Map<SubId, Link<E>>();
  #buffer: E[] = [];
  #pending = 0;

  constructor(
    readonly ctx: StageContext,
    readonly dispatcher: Dispatcher<E>,
    private readonly hooks: OutboxHooks,
  ) {}

  get pendingDemand(): number {
    return this.#pending;
  }

  get buffered(): number {
    return this.#buffer.length;
  }

  attach(link: Link<E>): void {
    if (this.links.has(link.id)) {
      throw new StagecoachError('stage.duplicate-subscriber', `${this.ctx.name} already has a subscriber with id ${link.id}`);
    }
    const delta = this.dispatcher.subscribe(link.id);
    this.links.set(link.id, link);
    if (delta !== 0) this.ctx.post(() => this.#apply(delta));
  }

  detach(link: Link<E>): void {
    if (this.links.get(link.id) !== link) return;
    this.links.delete(link.id);
    const delta = this.dispatcher.cancel(link.id);
    if (delta !== 0) this.ctx.post(() => this.#apply(delta));
  }

  receiveAsk(link: Link<E>, n: number): void {
    this.ctx.post(() => {
      if (!link.active || !this.ctx.live()) return;
      this.#apply(this.dispatcher.ask(link.id, n), link, n);
    });
  }

  /** Dispatches what it can at once; buffers the rest, in order, behind what is already buffered. */
  emit(events: readonly E[]): void {
    if (events.length === 0) return;
    this.#pending = Math.max(0, this.#pending - events.length);
    for (const event of events) this.#buffer.push(event);
    this.#flush();
  }

  cancelAll(reason: string): void {
    for (const link of [...this.links.values()]) link.cancel(reason);
  }

  #apply(delta: number, link?: Link<E>, n?: number): void {
    let rest = 0;
    if (delta < 0) {
      this.#pending = Math.max(0, this.#pending + delta);
    } else if (delta > 0) {
      // Buffered events are served first; only what they cannot cover is new demand.
      rest = Math.max(0, delta - this.#flush());
      this.#pending += rest;
    }
    if (this.ctx.running()) {
      if (link && n !== undefined) this.hooks.subscriberDemand(link.id, n);
      // The hook may have emitted against that demand already.
      const demand = Math.min(rest, this.#pending);
      if (demand > 0) this.ctx.invoke(() => this.hooks.demand(demand), () => undefined);
    }
    this.hooks.demandChanged();
  }

  #flush(): number {
    const before = this.#buffer.length;
    if (before === 0 || !(this.dispatcher.available() > 0)) return 0;
    const { sends, leftovers } = this.dispatcher.dispatch(this.#buffer);
    this.#buffer = leftovers;
    for (const [id, events] of sends) {
      const link = this.links.get(id);
      if (!link) throw new StagecoachError('stage.dispatcher', `${this.ctx.name}'s dispatcher sent events to ${id}, which is not subscribed`);
      if (events.length > 0) link.inbox.deliver(link, events);
    }
    return before - leftovers.length;
  }
}
