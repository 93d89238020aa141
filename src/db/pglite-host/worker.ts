// Worker-thread entry that owns the PGlite instance. PGlite runs every query
// synchronously in WASM, so hosting it here keeps the main event loop free.
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import { PGLITE_EXTENSIONS } from './extensions.ts';
import { serializeError, type Reply, type Request, type Startup } from './protocol.ts';

interface OpenTx {
  tx: Transaction;
  // Serialises queries issued inside this transaction.
  chain: Promise<unknown>;
  // Resolved by commit/rollback; the transaction callback awaits it.
  decide: (action: 'commit' | 'rollback') => void;
  // Id of the commit/rollback request to answer once PGlite has finished.
  closeRequestId?: number;
}

const port = parentPort;
if (!port) throw new Error('pglite-host/worker.ts must be started as a worker thread');

const { dataDir } = workerData as { dataDir?: string };
const openTxs = new Map<number, OpenTx>();

// Top-level lane: every non-transaction operation and every BEGIN runs one at a
// time. A transaction holds the lane until it is committed or rolled back, while
// its own queries use tx.chain; otherwise a top-level query queued behind an open
// transaction would wait on PGlite's lock forever and deadlock the lane.
let lane: Promise<unknown> = Promise.resolve();
function inLane<T>(fn: () => Promise<T>): Promise<T> {
  const run = lane.then(fn, fn);
  lane = run.catch(() => {});
  return run;
}

function send(reply: Reply): void {
  if (reply.id < 0) return; // internal bookkeeping id, nobody is waiting
  try {
    port!.postMessage(reply);
  } catch (err) {
    // e.g. DataCloneError for an exotic row value: report it instead of leaving
    // the caller waiting for a reply that never comes.
    port!.postMessage({ id: reply.id, ok: false, error: serializeError(err) } satisfies Reply);
  }
}
const ok = (id: number, value: unknown = null) => send({ id, ok: true, value });
const fail = (id: number, err: unknown) => send({ id, ok: false, error: serializeError(err) });

let pglite: PGlite;
try {
  pglite = new PGlite({ dataDir, extensions: PGLITE_EXTENSIONS });
  await pglite.waitReady;
} catch (err) {
  // Closing the port (rather than process.exit) lets this message flush first.
  port.postMessage({ type: 'startup-failed', error: serializeError(err) } satisfies Startup);
  port.close();
  throw err;
}

async function runQuery(req: Extract<Request, { type: 'query' | 'exec' }>): Promise<unknown> {
  const target = req.txId === undefined ? pglite : openTxs.get(req.txId)?.tx;
  if (!target) throw new Error(`PGlite transaction ${req.txId} is not open`);
  if (req.type === 'exec') {
    const results = await target.exec(req.sql);
    return results.map(({ rows, affectedRows, fields }) => ({ rows, affectedRows, fields }));
  }
  const { rows, affectedRows, fields } = await target.query(req.sql, req.params, {
    rowMode: req.rowMode,
    paramTypes: req.paramTypes,
  });
  // Only send what the Kysely interface uses; drops e.g. `blob`.
  return { rows, affectedRows, fields };
}

function begin(id: number): void {
  const txId = id; // the begin request id doubles as the transaction id
  let begun = false;
  const entry = {} as OpenTx;
  inLane(() =>
    pglite.transaction(async (tx) => {
      const decided = new Promise<'commit' | 'rollback'>((resolve) => (entry.decide = resolve));
      entry.tx = tx;
      entry.chain = Promise.resolve();
      openTxs.set(txId, entry);
      begun = true;
      ok(id, txId);
      // Returning normally makes PGlite COMMIT; an explicit rollback makes it skip that.
      if ((await decided) === 'rollback') await entry.tx.rollback();
    }),
  ).then(
    () => ok(entry.closeRequestId!),
    (err) => fail(begun ? entry.closeRequestId! : id, err),
  ).finally(() => openTxs.delete(txId));
}

function finish(req: Extract<Request, { type: 'commit' | 'rollback' }>): void {
  const entry = openTxs.get(req.txId);
  if (!entry || entry.closeRequestId !== undefined) {
    // Rolling back something already gone is harmless; committing it is a bug.
    if (req.type === 'rollback') ok(req.id);
    else fail(req.id, new Error(`PGlite transaction ${req.txId} is not open`));
    return;
  }
  entry.closeRequestId = req.id;
  // Let queries already queued in the transaction finish first.
  void entry.chain.then(() => entry.decide(req.type));
}

async function close(id: number): Promise<void> {
  // PGlite.close() waits for open transactions, so abandon them first.
  for (const entry of openTxs.values()) {
    if (entry.closeRequestId === undefined) {
      entry.closeRequestId = -1; // nobody waits for this reply
      entry.decide('rollback');
    }
  }
  try {
    await inLane(() => pglite.close());
    ok(id);
  } catch (err) {
    fail(id, err);
  }
  port!.close(); // lets the worker thread exit on its own
}

port.on('message', (req: Request) => {
  switch (req.type) {
    case 'query':
    case 'exec': {
      const entry = req.txId === undefined ? undefined : openTxs.get(req.txId);
      const run = () => runQuery(req).then((value) => ok(req.id, value), (err) => fail(req.id, err));
      // A transaction already told to commit/rollback accepts no more queries.
      if (entry && entry.closeRequestId === undefined) entry.chain = entry.chain.then(run);
      else if (req.txId !== undefined) fail(req.id, new Error(`PGlite transaction ${req.txId} is not open`));
      else void inLane(run);
      return;
    }
    case 'begin':
      return begin(req.id);
    case 'commit':
    case 'rollback':
      return finish(req);
    case 'close':
      void close(req.id);
      return;
  }
});
port.postMessage({ type: 'ready' } satisfies Startup);
