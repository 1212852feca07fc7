/** What every target's `download` shares: checking the requested start. */
import { StagecoachError } from '../../errors.js';

/** The start to ask for: a whole number not past `size`, else StagecoachError `download.bad-start`. */
export function checkStart(start: number | undefined, size: number, where: string): number {
  const s = start ?? 0;
  if (!Number.isSafeInteger(s) || s < 0 || s > size) {
    throw new StagecoachError('download.bad-start', `[stagecoach] [${where}] Expected \`start\` to be a whole number from 0 to ${size}, got ${String(start)}`);
  }
  return s;
}
