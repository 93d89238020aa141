// Main-thread side: a proxy satisfying Kysely's PGlite interface that forwards
// every call to a PGlite instance living in a worker thread (see worker.ts).
import { Worker } from 'node:worker_threads';
import { PGlite as RealPGlite } from '@electric-sql/pglite';
import type { PGlite, PGliteQueryOptions, PGliteQueryResults, PGliteTransaction } from 'kysely';
import { PGLITE_EXTENSIONS } from './extensions.ts';
import { deserializeError, type Reply, type Request, type Startup } from './protocol.ts';

export interface PGliteHostOptions {
  /** Filesystem directory (e.g. `./data/pglite`); undefined = in-memory. */
  dataDir?: string;
}

export interface PGliteHost extends PGlite {
  readonly worker: Worker;
  /** Runs a multi-statement script (e.g. a migration); no parameters. */
  exec(sql: string): Promise<PGliteQueryResults<unknown>[]>;
}

export const WORKER_DOWN = 'PGLITE_WORKER_DOWN';

function workerDown(reason: string): Error {
  return Object.assign(new Error(`PGlite worker is down: ${reason}`), { code: WORKER_DOWN });
}

// Distributive Omit so each Request variant keeps its own fields.
type Outgoing = Request extends infer R ? (R extends Request ? Omit<R, 'id'> : never) : never;

export async function startPGliteHost(options: PGliteHostOptions = {}): Promise<PGliteHost> {
  const worker = new Worker(new URL('./worker.ts', import.meta.url), {
    workerData: { dataDir: options.dataDir },
  });
  // A worker that fails to start reports on 'message' and then rethrows as 'error', possibly in
  // the same tick; a listener from the first moment keeps that from crashing the process (the
  // startup promise below and failAll report the failure).
  worker.on('error', () => {});

  try {
    await new Promise<void>((resolve, reject) => {
      const cleanup = () => worker.off('message', onMessage).off('error', onError).off('exit', onExit);
      const onMessage = (msg: Startup) => {
        cleanup();
        if (msg.type === 'ready') resolve();
        else reject(deserializeError(msg.error));
      };
      const onError = (err: Error) => (cleanup(), reject(err));
      const onExit = (code: number) => (cleanup(), reject(workerDown(`exited during startup (code ${code})`)));
      worker.on('message', onMessage).on('error', onError).on('exit', onExit);
    });
  } catch (err) {
    await worker.terminate();
    throw err;
  }

  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let down: string | undefined; // why the worker is gone; every call then fails fast
  let closing: Promise<void> | undefined; // close() was called: the exit is expected

  // An idle PGlite should not keep the process alive (the in-process one doesn't),
  // but a pending call must, or Node could exit while awaiting the reply.
  const updateRef = () => (pending.size > 0 ? worker.ref() : worker.unref());
  updateRef();

  worker.on('message', (reply: Reply) => {
    const call = pending.get(reply.id);
    if (!call) return;
    pending.delete(reply.id);
    updateRef();
    if (reply.ok) call.resolve(reply.value);
    else call.reject(deserializeError(reply.error));
  });

  // Each caller gets its own Error: Kysely rewrites the stack of errors it sees.
  const failAll = (reason: string) => {
    down ??= reason;
    for (const call of pending.values()) call.reject(workerDown(down));
    pending.clear();
  };
  worker.on('error', (err) => failAll(err.message));
  worker.on('exit', (code) => failAll(closing ? 'host was closed' : `exited with code ${code}`));

  function call<T>(msg: Outgoing): Promise<T> {
    if (down) return Promise.reject(workerDown(down));
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      try {
        worker.postMessage({ ...msg, id });
      } catch (err) {
        // Unclonable parameter (e.g. a function): nothing was sent.
        pending.delete(id);
        reject(err as Error);
      }
      updateRef();
    });
  }

  const query = <T>(txId: number | undefined, sql: string, params?: unknown[], opts?: PGliteQueryOptions) => {
    // Parsers, serializers and onNotice are functions and cannot cross the thread boundary.
    if (opts?.parsers || opts?.serializers || opts?.onNotice || opts?.blob) {
      return Promise.reject(new Error('PGlite host supports only the rowMode and paramTypes query options'));
    }
    const { rowMode, paramTypes } = opts ?? {};
    return call<PGliteQueryResults<T>>({ type: 'query', sql, params, rowMode, paramTypes, txId });
  };

  const host: PGliteHost = {
    worker,
    ready: true, // startPGliteHost only resolves after the worker reported ready
    waitReady: Promise.resolve(),
    // Only a deliberate close() counts: after a crash, calls must keep failing
    // with PGLITE_WORKER_DOWN rather than Kysely's generic "already closed".
    get closed() {
      return closing !== undefined;
    },
    query: (sql, params, opts) => query(undefined, sql, params, opts),
    exec: (sql) => call({ type: 'exec', sql }),
    async transaction<T>(callback: (tx: PGliteTransaction) => Promise<T>): Promise<T> {
      let txId: number;
      try {
        txId = await call<number>({ type: 'begin' });
      } catch (beginError) {
        // Kysely's driver waits for the callback to be entered and hangs forever if
        // transaction() rejects before that. So enter it with a tx on which every
        // call fails, then report the BEGIN failure.
        const fail = () => Promise.reject(beginError);
        await callback({ query: fail, rollback: fail }).catch(() => {});
        throw beginError;
      }
      let finished = false;
      const end = (type: 'commit' | 'rollback') => {
        finished = true;
        return call<void>({ type, txId });
      };
      const tx: PGliteTransaction = {
        query: (sql, params, opts) => query(txId, sql, params, opts),
        rollback: () => end('rollback'),
      };
      try {
        const result = await callback(tx);
        if (!finished) await end('commit');
        return result;
      } catch (err) {
        // Mirror PGlite: a throwing callback rolls back, and the original error wins.
        if (!finished) await end('rollback').catch(() => {});
        throw err;
      }
    },
    close() {
      closing ??= (async () => {
        if (down) return;
        try {
          await call({ type: 'close' });
        } finally {
          // Terminate even if PGlite.close() failed, so the thread never lingers.
          await worker.terminate();
          failAll('host was closed');
        }
      })();
      return closing;
    },
  };
  return host;
}

/** Non-worker mode: a plain PGlite on the main thread, same interface. */
export async function createInProcessPGlite(options: PGliteHostOptions = {}): Promise<RealPGlite> {
  const pglite = new RealPGlite({ dataDir: options.dataDir, extensions: PGLITE_EXTENSIONS });
  await pglite.waitReady;
  return pglite;
}
