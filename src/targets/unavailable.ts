import type { TargetError } from '../errors.js';
import type { Features, Target } from './target.js';

const FEATURES: Features = { hashKind: 'sha256', caseInsensitive: false, simpleUploadMax: 0, chunkSize: 0, resumable: false };

/**
 * Stands in for a target that could not be made (not signed in, a credential refused): every
 * call fails with the error that stopped it, classified fatal, so its uploader parks it with that
 * reason while the other targets go on, and `status` and `check` say why.
 */
export function createUnavailableTarget(id: string, type: string, error: TargetError): Target {
  const fail = async (): Promise<never> => {
    throw error;
  };
  return {
    id,
    type,
    features: FEATURES,
    put: fail,
    stat: fail,
    ensureFolder: fail,
    check: fail,
    classify: () => ({ kind: 'fatal', reason: error.message }),
    close: async () => undefined,
  };
}
