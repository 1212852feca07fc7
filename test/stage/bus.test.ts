import { describe, expect, expectTypeOf, it } from 'vitest';
import { EventBus, type StageEvents } from '../../src/telemetry/bus.js';
import { Supervisor, type StageOptions } from '../../src/stage/index.js';

describe('EventBus', () => {
  it('delivers to named listeners, then to onAny, and unsubscribes', () => {
    const bus = new EventBus<StageEvents>();
    const got: string[] = [];
    const off = bus.on('stage.start', (p) => got.push(`on ${p.stage}`));
    const offAny = bus.onAny((name, p) => got.push(`any ${name} ${JSON.stringify(p)}`));
    bus.on('stage.stop', () => got.push('wrong event'));
    bus.emit('stage.start', { stage: 'a' });
    off();
    offAny();
    bus.emit('stage.start', { stage: 'b' });
    expect(got).toEqual(['on a', 'any stage.start {"stage":"a"}']);
  });

  it('a listener that throws breaks neither emit nor the other listeners', () => {
    const bus = new EventBus<StageEvents>();
    const got: string[] = [];
    bus.on('stage.start', () => {
      throw new Error('bad listener');
    });
    bus.on('stage.start', (p) => got.push(p.stage));
    bus.onAny(() => {
      throw new Error('bad any');
    });
    bus.onAny((name) => got.push(name));
    expect(() => bus.emit('stage.start', { stage: 'a' })).not.toThrow();
    expect(got).toEqual(['a', 'stage.start']);
  });

  it('a bus of StageEvents widened by intersection is accepted by the runtime', () => {
    type PipelineEvents = { 'upload.stop': { target: string; bytes: number } };
    const bus = new EventBus<StageEvents & PipelineEvents>();
    const options: StageOptions = { name: 'x', bus };
    expect(new Supervisor([], { bus })).toBeInstanceOf(Supervisor);
    expectTypeOf(options.bus).not.toBeAny();
    let bytes = 0;
    bus.on('upload.stop', (p) => (bytes += p.bytes));
    bus.emit('upload.stop', { target: 'gdrive', bytes: 3 });
    expect(bytes).toBe(3);
  });
});
