/**
 * The local target's copy budget (src/targets/local/upload.ts `CopyBudget`): the chunk memory the
 * general path's copies hold at once is bounded in bytes whatever the target's maxDemand, first
 * come first served; a put that gives up while waiting (its signal fires) leaves its place to the
 * next ones and fails as an AbortError.
 */
import { describe, expect, test } from 'vitest';
import { CopyBudget } from '../../../src/targets/local/upload.js';

const MiB = 1024 * 1024;
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('CopyBudget', () => {
  test('grants what fits at once, then in order as bytes come back', async () => {
    const budget = new CopyBudget(8 * MiB);
    const order: string[] = [];
    const a = await budget.acquire(4 * MiB, 'local', undefined);
    const b = await budget.acquire(4 * MiB, 'local', undefined);
    const c = budget.acquire(4 * MiB, 'local', undefined).then((r) => (order.push('c'), r));
    // Small, but after c in line: it does not overtake (no starvation of large copies).
    const d = budget.acquire(1, 'local', undefined).then((r) => (order.push('d'), r));
    await turn();
    expect(order).toEqual([]);
    a();
    a(); // a second release gives nothing back twice: d (1 byte) still waits
    await turn();
    expect(order).toEqual(['c']);
    b();
    await turn();
    expect(order).toEqual(['c', 'd']);
    // 4 MiB (c) + 1 byte (d) held: 4 MiB do not fit.
    const e = budget.acquire(4 * MiB, 'local', undefined).then((r) => (order.push('e'), r));
    await turn();
    expect(order).toEqual(['c', 'd']);
    (await d)();
    (await e)();
    expect(order).toEqual(['c', 'd', 'e']);
    (await c)();
  });

  test('a waiting put whose signal fires fails as an AbortError and lets the ones behind it go', async () => {
    const budget = new CopyBudget(4 * MiB);
    const held = await budget.acquire(3 * MiB, 'local', undefined);
    const ac = new AbortController();
    const big = budget.acquire(4 * MiB, 'local', ac.signal);
    const small = budget.acquire(MiB, 'local', undefined);
    let smallGot = false;
    void small.then(() => {
      smallGot = true;
    });
    await turn();
    expect(smallGot).toBe(false);
    ac.abort();
    await expect(big).rejects.toMatchObject({ name: 'AbortError' });
    await small;
    expect(smallGot).toBe(true);
    held();
    // An already fired signal fails at once.
    await expect(budget.acquire(1, 'local', ac.signal)).rejects.toMatchObject({ name: 'AbortError' });
  });
});
