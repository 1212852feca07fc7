import { describe, expect, it } from 'vitest';
import { isConnectionError, reconnectDelay } from '../../src/state/pg-retry.js';

// SQLSTATEs: https://www.postgresql.org/docs/current/errcodes-appendix.html
describe('isConnectionError: which PostgreSQL failures are retried on a new connection', () => {
  it.each([
    [{ code: '57P01', message: 'terminating connection due to administrator command' }, true],
    [{ code: '57P02', message: 'terminating connection because of crash of another server process' }, true],
    [{ code: '57P03', message: 'the database system is starting up' }, true],
    [{ code: '08006', message: 'connection failure' }, true],
    [{ code: '08003', message: 'connection does not exist' }, true],
    [{ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:5432' }, true],
    [{ code: 'ECONNRESET', message: 'read ECONNRESET' }, true],
    [new Error('Connection terminated unexpectedly'), true],
    [new Error('Client has encountered a connection error and is not queryable'), true],
    // A statement's own errors are not: replaying them would only fail again (or loop forever).
    [{ code: '08P01', message: 'bind message supplies 2 parameters, but prepared statement "" requires 3' }, false],
    [{ code: '23505', message: 'duplicate key value violates unique constraint' }, false],
    [{ code: '40001', message: 'could not serialize access' }, false],
    [{ code: 'state.unknown-delivery', message: 'no delivery with id 3' }, false],
    [new Error('boom'), false],
    ['Connection terminated', false],
    [null, false],
  ])('%o → %s', (e, lost) => {
    expect(isConnectionError(e)).toBe(lost);
  });

  it('waits 100 ms, doubling to at most 5 s', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 20].map(reconnectDelay)).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000]);
  });
});
