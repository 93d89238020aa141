// Message shapes exchanged between host.ts (main thread) and worker.ts.
// Everything here must survive structured clone, so no functions or classes.

export type QueryOp = 'query' | 'exec';

export type Request =
  | {
      id: number;
      type: QueryOp;
      sql: string;
      params?: unknown[];
      rowMode?: 'array' | 'object';
      paramTypes?: number[];
      txId?: number;
    }
  | { id: number; type: 'begin' }
  | { id: number; type: 'commit' | 'rollback'; txId: number }
  | { id: number; type: 'close' };

export interface SerializedError {
  name: string;
  message: string;
  // SQLSTATE and the other PostgreSQL error fields, copied when present.
  [field: string]: string | undefined;
}

export type Reply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: SerializedError };

// First message from the worker: PGlite finished booting (or failed to).
export type Startup = { type: 'ready' } | { type: 'startup-failed'; error: SerializedError };

// Fields of PGlite's DatabaseError worth carrying across the thread boundary.
const ERROR_FIELDS = [
  'code', 'severity', 'detail', 'hint', 'position', 'internalPosition', 'internalQuery',
  'where', 'schema', 'table', 'column', 'dataType', 'constraint', 'routine',
] as const;

export function serializeError(err: unknown): SerializedError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const out: SerializedError = { name: err.name, message: err.message };
  const src = err as unknown as Record<string, unknown>;
  for (const field of ERROR_FIELDS) {
    const value = src[field];
    if (value !== undefined && value !== null) out[field] = String(value);
  }
  return out;
}

export function deserializeError(data: SerializedError): Error {
  const err = new Error(data.message);
  Object.assign(err, data); // name, code, constraint, ... become own properties
  return err;
}
