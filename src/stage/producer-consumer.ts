import { StagecoachError } from '../errors.js';
import type { Dispatcher, SubId } from './dispatcher.js';
import { DemandDispatcher } from './dispatchers/demand.js';
import { CTX, ENDS, INBOX, OUTBOX, Stage, type Ends, type StageOptions } from './stage.js';
import { Inbox, Outbox, type Link, type Sink, type Source, type Subscription } from './subscription.js';

export interface ProducerConsumerOptions<O> extends StageOptions {
  /** How output events are shared among subscribers. Default: a new DemandDispatcher. */
  dispatcher?: Dispatcher<O>;
}

/**
 * A stage that consumes I under demand (like a Consumer) and produces O through a dispatcher
 * (like a Producer). Implement `handleEvents(events, from)`, returning the O events to emit; the
 * Producer's and the Consumer's other callbacks MAY be implemented. When and with how much input
 * `handleEvents` is called, and what `stop()` does with queued input: docs/architecture.md
 * §2.1–2.2.
 */
export abstract class ProducerConsumer<I, O> extends Stage implements Sink<I>, Source<O> {
  /** @internal */
  readonly [INBOX]: Inbox<I>;
  /** @internal */
  readonly [OUTBOX]: Outbox<O>;
  readonly #queue: Array<{ link: Link<I>; events: I[] }> = [];
  #busy = false;

  constructor(options: ProducerConsumerOptions<O>) {
    super(options);
    this[INBOX] = new Inbox<I>(
      this[CTX],
      (link, events) => {
        this.#queue.push({ link, events });
        this.#pump();
      },
      (subscription, reason) => this.handleCancel?.(subscription, reason),
    );
    this[OUTBOX] = new Outbox<O>(this[CTX], options.dispatcher ?? new DemandDispatcher<O>(), {
      demand: (n) => this.handleDemand?.(n),
      subscriberDemand: (sub, n) => this.handleSubscriberDemand?.(sub, n),
      demandChanged: () => this.#pump(),
    });
  }

  /** Demand asked of this stage's output and not yet met by `emit`. */
  get pendingDemand(): number {
    return this[OUTBOX].pendingDemand;
  }

  /** Output emitted that no subscriber could take yet. */
  get buffered(): number {
    return this[OUTBOX].buffered;
  }

  /** Input events received and not yet handed to `handleEvents`. */
  get queued(): number {
    let n = 0;
    for (const { events } of this.#queue) n += events.length;
    return n;
  }

  /** The upstream subscriptions still active. */
  get subscriptions(): Subscription[] {
    return [...this[INBOX].links];
  }

  protected abstract handleEvents(events: I[], from: SubId): O[] | Promise<O[]>;
  protected handleDemand?(n: number): void | Promise<void>;
  protected handleSubscriberDemand?(sub: SubId, n: number): void;
  protected handleCancel?(subscription: Subscription, reason: string): void;

  /** Sends events to subscribers with demand at once; buffers the rest. Callable at any time. */
  protected emit(events: readonly O[]): void {
    this[OUTBOX].emit(events);
  }

  /** @internal */
  protected [ENDS](): Ends {
    return {
      inbox: this[INBOX],
      outbox: this[OUTBOX],
      idle: () => !this.#busy && (this.#queue.length === 0 || !(this[OUTBOX].dispatcher.available() > 0)),
    };
  }

  #pump(): void {
    const ctx = this[CTX];
    if (this.#busy || !ctx.live()) return;
    const head = this.#queue[0];
    const available = this[OUTBOX].dispatcher.available();
    if (head && available > 0) {
      const { link } = head;
      let batch: I[];
      if (available >= head.events.length) {
        batch = head.events;
        this.#queue.shift();
        // Batches from the same subscription that queued up while the stage was busy go in one
        // call: the events are the same and in the same order, and one call (one journal
        // transaction for the Archiver) costs less than many.
        while (this.#queue[0]?.link === link && batch.length + this.#queue[0].events.length <= available) {
          batch = batch.concat(this.#queue.shift()!.events);
        }
      } else {
        batch = head.events.splice(0, available);
      }
      this.#busy = true;
      ctx.invoke(
        () => this.handleEvents(batch, link.id),
        (out) => {
          this.#busy = false;
          if (!Array.isArray(out)) {
            throw new StagecoachError('stage.bad-return', `${this.name}.handleEvents must return an array of events, got ${typeof out}`);
          }
          this[OUTBOX].emit(out);
          this[INBOX].ack(link, batch.length);
          this.#pump();
        },
      );
      return;
    }
    ctx.checkDrain();
  }
}
