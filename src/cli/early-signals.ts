/**
 * SIGTERM and SIGINT from a daemon's first instant. `run` and `backfill` listen for them only once
 * the config is read and their modules are loaded (run.ts), ~0.1–0.3 s after the process starts;
 * a signal before that ended the process by the signal's default action: nothing had started, so
 * nothing was lost, but a container stopped at that moment reported exit 143, not 0, and a
 * service manager saw a crash. Held from the moment the command is known (main.ts), a signal is
 * handed to the daemon's own listener, which starts and then stops in order (exit 0); a second one
 * exits at once (130), as it does once the daemon listens.
 */
import { EXIT } from './exit-codes.js';

const held: NodeJS.Signals[] = [];
let holding = false;

function hold(sig: NodeJS.Signals): void {
  held.push(sig);
  if (held.length > 1) process.exit(EXIT.interrupted);
}

/** Listens for SIGTERM and SIGINT and keeps them for takeSignals (idempotent). */
export function holdSignals(): void {
  if (holding) return;
  holding = true;
  process.on('SIGTERM', hold);
  process.on('SIGINT', hold);
}

/** Stops listening and returns the signals held meanwhile (at most one), oldest first. */
export function takeSignals(): NodeJS.Signals[] {
  if (holding) {
    holding = false;
    process.off('SIGTERM', hold);
    process.off('SIGINT', hold);
  }
  return held.splice(0);
}
