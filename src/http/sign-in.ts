/**
 * Sign-in from the status page ("Connect"): the same sign-in as `stagecoach auth <id>`, its
 * lines shown in the page instead of a terminal, and its one question (the pasted address or code)
 * answered from the page. The OneDrive device-code flow asks nothing: the page shows the address
 * and the code, and the sign-in ends by itself once the code is approved.
 */
import type { Logger } from 'pino';
import type { AuthIO } from '../targets/target.js';

/** What the server is given to sign targets in (cli/auth.ts `createSignIn`). */
export interface SignInHandler {
  can(id: string): boolean;
  run(id: string, io: AuthIO): Promise<void>;
}

/** One sign-in as the page sees it. */
export interface SignInState {
  state: 'running' | 'done' | 'failed';
  /** What the sign-in printed, in order (addresses, the device code, what to do). */
  lines: string[];
  /** The question it waits on (paste the address or the code), or null. */
  question: string | null;
  /** The outcome, once done or failed. */
  message: string | null;
}

interface Session extends SignInState {
  answer: ((text: string) => void) | null;
  cancel: ((reason: Error) => void) | null;
  waiters: Set<() => void>;
  lastPrintAt: number;
}

export interface SignInSessions {
  /** Starts a sign-in of `id` (ending one still under way) and answers once it shows something to do. */
  start(id: string): Promise<SignInState>;
  /** Answers the question; resolves when the sign-in ends or asks again (at most `waitMs`). */
  answer(id: string, text: string): Promise<SignInState | null>;
  get(id: string): SignInState | null;
  /** Ends every sign-in under way. */
  close(): void;
}

function snapshot(s: Session): SignInState {
  return { state: s.state, lines: [...s.lines], question: s.question, message: s.message };
}

export function createSignInSessions(handler: SignInHandler, log: Logger, opts: { waitMs?: number } = {}): SignInSessions {
  const waitMs = opts.waitMs ?? 20_000;
  const sessions = new Map<string, Session>();
  const notify = (s: Session) => {
    for (const w of [...s.waiters]) w();
  };
  const change = (s: Session, ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        s.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      s.waiters.add(done);
    });
  /** Until the sign-in asks, ends, or has printed and then been quiet for half a second. */
  const settle = async (s: Session, asked: boolean) => {
    const deadline = Date.now() + waitMs;
    while (s.state === 'running' && s.question === null && Date.now() < deadline) {
      if (!asked && s.lines.length > 0 && Date.now() - s.lastPrintAt >= 500) break;
      await change(s, 250);
    }
  };

  return {
    async start(id) {
      sessions.get(id)?.cancel?.(new Error('a new sign-in was started'));
      const s: Session = { state: 'running', lines: [], question: null, message: null, answer: null, cancel: null, waiters: new Set(), lastPrintAt: 0 };
      sessions.set(id, s);
      const io: AuthIO = {
        print: (line) => {
          s.lines.push(line);
          s.lastPrintAt = Date.now();
          notify(s);
        },
        prompt: (question) =>
          new Promise<string>((resolve, reject) => {
            s.question = question;
            s.answer = resolve;
            s.cancel = reject;
            notify(s);
          }),
      };
      log.info({ target: id }, 'sign-in started from the status page');
      handler.run(id, io).then(
        () => {
          s.state = 'done';
          s.message = `${id} is signed in; it starts now`;
          log.info({ target: id }, 'signed in from the status page');
        },
        (err: unknown) => {
          s.state = 'failed';
          s.message = err instanceof Error ? err.message : String(err);
          log.warn({ target: id, reason: s.message }, 'sign-in from the status page failed');
        },
      ).finally(() => {
        s.question = null;
        s.answer = null;
        s.cancel = null;
        notify(s);
      });
      await settle(s, false);
      return snapshot(s);
    },
    async answer(id, text) {
      const s = sessions.get(id);
      if (!s || !s.answer) return null;
      const answer = s.answer;
      s.answer = null;
      s.cancel = null;
      s.question = null;
      answer(text);
      await settle(s, true);
      return snapshot(s);
    },
    get(id) {
      const s = sessions.get(id);
      return s ? snapshot(s) : null;
    },
    close() {
      for (const s of sessions.values()) s.cancel?.(new Error('the status page is closing'));
      sessions.clear();
    },
  };
}
