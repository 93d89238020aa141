import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config.ts';
import { DatabaseOpenError } from '../db/database.ts';
import { migrateToLatest } from '../db/migrate.ts';
import { tenantDb } from '../db/tenant.ts';
import { AppError } from '../errors.ts';
import { openRuntime, type Runtime } from '../runtime.ts';

const USAGE = `Usage: crm-core <command> [options]

Commands:
  serve                                   migrate, create the first account on an empty database, listen
  migrate                                 apply pending database migrations
  init [--name N] [--owner NAME] [--email E]
                                          create an account with an OWNER member and an API key (printed once)
  keys create --account ID --member ID [--workspace W] [--name N]
                                          create an API key for a member (secret printed once)
  plan show --account ID                  print the account's plan limits and usage
  plan set --account ID key=value ...     change plan limits (value "null" = unlimited), e.g. apiKeys.max=10

Configuration comes from environment variables; see README.md.`;

function print(value: unknown) {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function parseLimit(assignment: string): [string, number | boolean | null] {
  const eq = assignment.indexOf('=');
  if (eq < 1) throw new AppError(400, 'ValidationError', `expected key=value, got "${assignment}"`);
  const raw = assignment.slice(eq + 1);
  const value = raw === 'null' ? null : raw === 'true' ? true : raw === 'false' ? false : Number(raw);
  return [assignment.slice(0, eq), value];
}

async function run(runtime: Runtime, command: string[], values: Record<string, string | undefined>): Promise<void> {
  const { services } = runtime;
  const account = () => {
    if (!values.account) throw new AppError(400, 'ValidationError', '--account is required');
    return tenantDb(runtime.database.db, values.account);
  };
  const existingAccount = async () => {
    const tenant = account();
    await services.accounts.get(tenant).catch((error: unknown) => {
      throw error instanceof AppError && error.status === 404
        ? new AppError(404, 'NotFound', `account ${tenant.accountId} does not exist`)
        : error;
    });
    return tenant;
  };
  switch (command.join(' ')) {
    case 'init': {
      const created = await services.accounts.create({
        name: values.name ?? 'Default account',
        ownerName: values.owner ?? 'Owner',
        ownerEmail: values.email ?? null,
      });
      print({ accountId: created.accountId, memberId: created.owner.memberId, apiKey: created.key.apiKey, apiSecret: created.key.apiSecret });
      return;
    }
    case 'keys create': {
      if (!values.member) throw new AppError(400, 'ValidationError', '--member is required');
      const tenant = await existingAccount();
      const key = await services.apiKeys.create(tenant, null, { memberId: values.member, workspaceId: values.workspace ?? null, ...(values.name ? { name: values.name } : {}) });
      print({ apiKey: key.apiKey, apiSecret: key.apiSecret, memberId: key.memberId, workspaceId: key.workspaceId });
      return;
    }
    case 'plan show': {
      const tenant = await existingAccount();
      const { limits, used } = await services.quota.usage(tenant);
      print({ limits, used: Object.fromEntries(used) });
      return;
    }
    default:
      if (command[0] === 'plan' && command[1] === 'set') {
        const tenant = await existingAccount();
        print(await services.quota.setLimits(tenant, Object.fromEntries(command.slice(2).map(parseLimit))));
        return;
      }
      process.stderr.write(`${USAGE}\n`);
      process.exitCode = 2;
  }
}

/** The commands `run` understands, by their leading words. */
const COMMANDS = ['serve', 'migrate', 'init', 'keys create', 'plan show', 'plan set'];

/** Options a command cannot run without, checked before the database is opened. */
const REQUIRED: Record<string, string[]> = {
  'keys create': ['account', 'member'],
  'plan show': ['account'],
  'plan set': ['account'],
};

function knownCommand(positionals: string[]): boolean {
  const [first, second] = positionals;
  if (first === 'plan' && second === 'set') return true; // takes key=value arguments
  return positionals.length <= 2 && COMMANDS.includes(positionals.join(' '));
}

function usageError(message: string): void {
  process.stderr.write(`crm-core: ${message}\n\n${USAGE}\n`);
  process.exitCode = 2;
}

async function main(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        account: { type: 'string' }, member: { type: 'string' }, workspace: { type: 'string' },
        name: { type: 'string' }, owner: { type: 'string' }, email: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    usageError((error as Error).message); // unknown option, missing option value
    return;
  }
  const { positionals, values } = parsed;
  if (values.help || positionals.length === 0) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  // Refuse unknown commands before touching the database (which may be locked or down).
  if (!knownCommand(positionals)) {
    usageError(`unknown command "${positionals.join(' ')}"`);
    return;
  }
  const command = positionals[0] === 'plan' ? positionals.slice(0, 2).join(' ') : positionals.join(' ');
  const missing = (REQUIRED[command] ?? []).filter((name) => !values[name as keyof typeof values]);
  if (missing.length) {
    usageError(`${command}: ${missing.map((name) => `--${name}`).join(' and ')} ${missing.length > 1 ? 'are' : 'is'} required`);
    return;
  }
  const config = loadConfig();
  // The HTTP stack is loaded only to serve (the other commands start faster without it), while
  // the database opens.
  const serverModule = positionals[0] === 'serve' ? import('../server.ts') : undefined;
  serverModule?.catch(() => {}); // reported below, once the database is open
  const runtime = await openRuntime(config, { migrate: positionals[0] !== 'migrate' });
  if (serverModule) {
    try {
      await (await serverModule).serve(runtime);
    } catch (error) {
      // e.g. the port is taken: release the database (and its lock) before reporting.
      await runtime.close().catch(() => {});
      throw error;
    }
    return;
  }
  try {
    if (positionals[0] === 'migrate') {
      const applied = await migrateToLatest(runtime.database.db);
      print({ applied });
    } else {
      await run(runtime, positionals, values as Record<string, string | undefined>);
    }
  } finally {
    await runtime.close();
  }
}

/** Errors an operator can act on get one line; anything else is a bug and keeps its stack. */
function operatorMessage(error: unknown): string | undefined {
  if (error instanceof ConfigError || error instanceof AppError || error instanceof DatabaseOpenError) return error.message;
  // System errors (port in use, database refused the connection, permission denied).
  if (error instanceof Error && typeof (error as NodeJS.ErrnoException).syscall === 'string') return error.message;
  if (error instanceof AggregateError && error.errors.length > 0 && error.errors.every((e) => operatorMessage(e) !== undefined)) {
    return error.errors.map((e) => operatorMessage(e)).join('; ');
  }
  return undefined;
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const message = operatorMessage(error);
  process.stderr.write(`crm-core: ${message ?? (error instanceof Error ? error.stack : String(error))}\n`);
  process.exitCode = 1;
});
