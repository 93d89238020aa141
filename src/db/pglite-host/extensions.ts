import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';

/**
 * Extensions the migrations create, loaded into every PGlite instance (PGlite bundles contrib
 * modules but loads only those it is given). PostgreSQL ships the same ones in contrib.
 */
export const PGLITE_EXTENSIONS = { pg_trgm };
