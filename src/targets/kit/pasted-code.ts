import { TargetError } from '../../errors.js';

/** Who is signing in, for the errors: `code` is `<provider>.<rule>`, the message names `providerName`. */
export interface PasteContext {
  targetId: string;
  provider: string;
  providerName: string;
  /** The `state` sent with the sign-in URL; absent when the flow sends none (the code is shown on a page). */
  state?: string;
}

/**
 * The authorization code in what the user pasted after signing in, for every provider: the bare
 * code, the whole URL the browser was sent to (`…?code=…&state=…`, or in its `#` part), or its
 * query alone (`?code=…`, `state=…&code=…`). Percent-escapes are decoded. Fails with a TargetError
 * `fatal`, code `<provider>.<rule>`: `auth-no-code` (nothing pasted, or no code in it),
 * `auth-denied` (the provider answered `error=`), `auth-state-mismatch` (the URL belongs to
 * another sign-in attempt: its state differs).
 */
export function codeFromPaste(answer: string, ctx: PasteContext): string {
  const a = answer.trim();
  const fail = (rule: string, detail: string): TargetError =>
    new TargetError(ctx.targetId, 'fatal', `${rule}: ${detail}`, { code: `${ctx.provider}.${rule}` });
  if (a === '') throw fail('auth-no-code', 'nothing was pasted');
  if (!/(^|[?&#])(code|error)=/.test(a)) return a;
  const q = a.search(/[?#]/);
  const params = new URLSearchParams((q < 0 ? a : a.slice(q + 1)).replace(/#/g, '&'));
  const error = params.get('error');
  const description = params.get('error_description')?.split(/\r?\n/)[0];
  if (error) throw fail('auth-denied', `${ctx.providerName} did not grant access (${error}${description ? `: ${description}` : ''})`);
  const got = params.get('state');
  if (ctx.state !== undefined && got !== null && got !== ctx.state) {
    throw fail('auth-state-mismatch', 'the URL belongs to another sign-in attempt (state differs); start again');
  }
  const code = params.get('code');
  if (!code) throw fail('auth-no-code', 'the URL holds no code');
  return code;
}
