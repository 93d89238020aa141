import { randomBytes } from 'node:crypto';
import { sign } from '../../src/lib/hmac-signature.ts';

export interface Credentials {
  apiKey: string;
  apiSecret: string;
}

/** A Solapi `Authorization` header, exactly as the seed clients build it. */
export function authorization(creds: Credentials, options: { date?: string; salt?: string; signature?: string } = {}): string {
  const date = options.date ?? new Date().toISOString();
  const salt = options.salt ?? randomBytes(16).toString('hex');
  const signature = options.signature ?? sign(creds.apiSecret, date, salt);
  return `HMAC-SHA256 apiKey=${creds.apiKey}, date=${date}, salt=${salt}, signature=${signature}`;
}
