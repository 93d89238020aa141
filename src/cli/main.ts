import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config.ts';
import { migrateToLatest } from '../db/migrate.ts';
import { tenantDb } from '../db/tenant.ts';
import { AppError } from '../errors.ts';
import { openRuntime, type Runtime } from '../runtime.ts';
import { serve } from '../server.ts';

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
      const tenant = account();
      await services.accounts.get(tenant);
      const key = await services.apiKeys.create(tenant, null, { memberId: values.member, workspaceId: values.workspace ?? null, ...(values.name ? { name: values.name } : {}) });
      print({ apiKey: key.apiKey, apiSecret: key.apiSecret, memberId: key.memberId, workspaceId: key.workspaceId });
      return;
    }
    case 'plan show': {
      const tenant = account();
      await services.accounts.get(tenant);
      const { limits, used } = await services.quota.usage(tenant);
      print({ limits, used: Object.fromEntries(used) });
      return;
    }
    default:
      if (command[0] === 'plan' && command[1] === 'set') {
        const tenant = account();
        await services.accounts.get(tenant);
        print(await services.quota.setLimits(tenant, Object.fromEntries(command.slice(2).map(parseLimit))));
        return;
      }
      process.stderr.write(`${USAGE}\n`);
      process.exitCode = 2;
  }
}

async function main(argv: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      account: { type: 'string' }, member: { type: 'string' }, workspace: { type: 'string' },
      name: { type: 'string' }, owner: { type: 'string' }, email: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length === 0) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const config = loadConfig();
  const runtime = await openRuntime(config, { migrate: positionals[0] !== 'migrate' });
  if (positionals[0] === 'serve') {
    await serve(runtime);
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

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof ConfigError || error instanceof AppError) {
    process.stderr.write(`crm-core: ${error.message}\n`);
  } else {
    process.stderr.write(`crm-core: ${error instanceof Error ? error.stack : String(error)}\n`);
  }
  process.exitCode = 1;
});
