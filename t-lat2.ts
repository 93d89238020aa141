import pg from 'pg';
import { Kysely, PostgresDialect, sql } from 'kysely';
const pool = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:5432/crm_prof', max: 4 });
const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
const key = (await pool.query('select api_key from api_keys limit 1')).rows[0].api_key;
async function time(label: string, fn: () => Promise<unknown>, n = 1000) {
  for (let i = 0; i < 100; i++) await fn();
  const t = performance.now(); for (let i = 0; i < n; i++) await fn(); console.log(label.padEnd(40), ((performance.now() - t) / n).toFixed(3), 'ms');
}
await time('pool simple select 1', () => pool.query('select 1'));
await time('pool param select by key', () => pool.query('select * from api_keys where api_key = $1', [key]));
await time('pool named prepared select by key', () => pool.query({ name: 'k', text: 'select * from api_keys where api_key = $1', values: [key] }));
await time('kysely select by key', () => db.selectFrom('api_keys').selectAll().where('api_key', '=', key).execute());
const c = await pool.connect();
await time('dedicated client param select', () => c.query('select * from api_keys where api_key = $1', [key]));
c.release();
await db.destroy();
