import { TargetError } from '../errors.js';

/**
 * The authorization code in what the user pasted after signing in: the bare code, or the whole
 * URL the browser was sent to (`…?code=…&state=…`). A URL of another sign-in attempt (its state
 * differs), a refusal (`error=`), or nothing at all fail with a TargetError `fatal` whose code is
 * `<provider>.<rule>` (auth-no-code, auth-denied, auth-state-mismatch).
 */
export function codeFromPaste(answer: string, opts: { state: string; targetId: string; provider: string; providerName: string }): string {
  const a = answer.trim();
  const fail = (rule: string, detail: string): TargetError =>
    new TargetError(opts.targetId, 'fatal', `${rule}: ${detail}`, { code: `${opts.provider}.${rule}` });
  if (a === '') throw fail('auth-no-code', 'nothing was pasted');
  if (!/[?&]code=|[?&]error=|:\/\//.test(a)) return a;
  let params: URLSearchParams;
  try {
    params = new URL(a, 'http://localhost/').searchParams;
  } catch {
    throw fail('auth-no-code', 'the pasted text is neither a code nor a URL');
  }
  const error = params.get('error');
  const description = params.get('error_description')?.split(/\r?\n/)[0];
  if (error) throw fail('auth-denied', `${opts.providerName} did not grant access (${error}${description ? `: ${description}` : ''})`);
  const got = params.get('state');
  if (got !== null && got !== opts.state) throw fail('auth-state-mismatch', 'the URL belongs to another sign-in attempt (state differs); start again');
  const code = params.get('code');
  if (!code) throw fail('auth-no-code', 'the URL holds no code');
  return code;
}
