import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../config.ts';

function readKey(file: string): Buffer | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(`cannot read the master key ${file}: ${(error as Error).message}`);
  }
  const key = Buffer.from(text.trim(), 'base64');
  if (key.length !== 32) {
    // Never replace it: every stored API secret is sealed with this key.
    throw new ConfigError(`${file} does not hold a 32-byte base64 key; restore it from a backup (API secrets are sealed with it)`);
  }
  return key;
}

/**
 * The embedded (PGlite) setup has no operator to hand us MASTER_KEY, so the first start writes
 * one next to the data (mode 0600). With PostgreSQL the key must come from the environment so
 * every API node shares it (config.ts enforces that).
 *
 * The file appears atomically and complete (written aside, then hard-linked into place), so a
 * crash mid-write cannot leave a truncated key behind, and of two racing first starts the
 * loser reads the winner's key instead of overwriting it.
 */
export function loadOrCreateMasterKey(dataDir: string): Buffer {
  const file = join(dataDir, 'master.key');
  const existing = readKey(file);
  if (existing) return existing;
  mkdirSync(dataDir, { recursive: true });
  const key = randomBytes(32);
  const temp = join(dataDir, `master.key.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(temp, 'wx', 0o600);
  try {
    writeSync(fd, `${key.toString('base64')}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(temp, file);
    return key;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return readKey(file) ?? loadOrCreateMasterKey(dataDir);
  } finally {
    unlinkSync(temp);
  }
}
