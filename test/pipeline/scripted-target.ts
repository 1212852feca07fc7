import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Pipeline } from '../../src/pipeline/topology.js';
import type { Classified, PutRequest, PutResult, Target } from '../../src/targets/target.js';
import { createMemoryTarget, type MemoryTarget } from '../../src/targets/memory/index.js';
import { tempDir } from '../helpers/fs.js';
import { harness, type Harness } from './helpers.js';

/** Thrown by a scripted put; its classification is carried along. */
export class ScriptedError extends Error {
  constructor(readonly classified: Classified) {
    super(classified.reason);
  }
}

/**
 * A memory target whose puts can be held, failed or slowed from a test, to drive the uploader,
 * the supervisor and the shutdown through their paths. Real hashing and storage underneath.
 */
export interface ScriptedTarget extends Target {
  readonly memory: MemoryTarget;
  /** Puts started (attempts), by remote path. */
  readonly attempts: Map<string, number>;
  /** Puts currently running. */
  readonly running: number;
  /** Decides each attempt: 'ok', a classified failure, or 'hold' (waits until released or aborted). */
  script: (remotePath: string, attempt: number) => 'ok' | 'hold' | Classified;
  /** Lets every held put go on. */
  release(): void;
  /** The remote paths `prepare` was told, in order. */
  readonly prepared: string[];
  /** Each put's remote path, attempt and PutRequest.firstPut, in order. */
  readonly puts: Array<{ remotePath: string; attempt: number; firstPut: boolean }>;
}

export function createScriptedTarget(id: string): ScriptedTarget {
  const memory = createMemoryTarget({ id });
  const attempts = new Map<string, number>();
  let running = 0;
  let waiters: Array<() => void> = [];
  const t: ScriptedTarget = {
    id,
    type: 'scripted',
    features: memory.features,
    memory,
    attempts,
    get running() {
      return running;
    },
    script: () => 'ok',
    release() {
      const w = waiters;
      waiters = [];
      for (const f of w) f();
    },
    async put(req: PutRequest): Promise<PutResult> {
      const n = (attempts.get(req.remotePath) ?? 0) + 1;
      attempts.set(req.remotePath, n);
      t.puts.push({ remotePath: req.remotePath, attempt: n, firstPut: req.firstPut === true });
      running++;
      try {
        const what = t.script(req.remotePath, n);
        if (what === 'hold') {
          await new Promise<void>((resolve, reject) => {
            waiters.push(resolve);
            const onAbort = () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
            if (req.signal?.aborted) onAbort();
            req.signal?.addEventListener('abort', onAbort, { once: true });
          });
        } else if (what !== 'ok') {
          throw new ScriptedError(what);
        }
        return await memory.put(req);
      } finally {
        running--;
      }
    },
    stat: (p) => memory.stat(p),
    ensureFolder: (p) => memory.ensureFolder(p),
    prepared: [],
    puts: [],
    prepare(paths) {
      t.prepared.push(...paths);
    },
    classify: (e) => (e instanceof ScriptedError ? e.classified : memory.classify(e)),
    check: () => memory.check(),
    close: () => memory.close(),
  };
  return t;
}

/**
 * A harness (helpers.ts) with `files` small files in its inbox (f0.txt, f1.txt, …) and a scripted
 * target `cloud`, which `extra` configures. `start` runs the pipeline with it; `restart` stops it
 * and runs a new one on the same journal; `cleanup` lets held puts go, stops what was started and
 * removes the folders.
 */
export async function scriptedHarness(extra: string, files: number, opts: { shutdownMs?: number } = {}) {
  const t = await tempDir();
  const h: Harness = await harness(t.dir, extra, opts);
  for (let i = 0; i < files; i++) await writeFile(path.join(h.inbox, `f${i}.txt`), `file ${i}`);
  let cloud = createScriptedTarget('cloud');
  let p: Pipeline | null = null;
  return {
    h,
    /** The scripted target of the pipeline started last. */
    get cloud(): ScriptedTarget {
      return cloud;
    },
    async start(mode: 'once' | 'watch' = 'watch'): Promise<Pipeline> {
      p = await h.start({ mode, targets: [cloud] });
      return p;
    },
    /**
     * Stops the pipeline and starts another on the same folders and journal, with a new scripted
     * target (a stopped pipeline closes its targets) that follows the old one's script.
     */
    async restart(mode: 'once' | 'watch' = 'watch'): Promise<Pipeline> {
      await p?.stop();
      const next = createScriptedTarget('cloud');
      next.script = cloud.script;
      cloud.release();
      cloud = next;
      p = await h.start({ mode, targets: [cloud] });
      return p;
    },
    /** Stops the pipeline started last (once; later calls wait for the same stop). */
    stop: async (): Promise<void> => {
      await p?.stop();
    },
    cleanup: async (): Promise<void> => {
      cloud.release();
      await p?.stop();
      await t.cleanup();
    },
  };
}
