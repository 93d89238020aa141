import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';

/**
 * API secrets must stay recoverable (HMAC verification needs the secret itself), so they
 * cannot be hashed like passwords. They are sealed with AES-256-GCM under a master key that
 * lives outside the database: a copy of the database alone cannot sign requests.
 * The API key is bound in as associated data so a sealed secret cannot be moved to another key.
 */
export interface SecretBox {
  seal(plaintext: string, associatedData: string): string;
  open(sealed: string, associatedData: string): string;
  /**
   * HMAC-SHA256 (base64url) of `message` under a key derived from the master key for `purpose`
   * (HKDF), e.g. signed download URLs: any node sharing the master key verifies them, and a
   * signature made for one purpose means nothing for another.
   */
  mac(purpose: string, message: string): string;
}

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export function createSecretBox(masterKey: Buffer): SecretBox {
  if (masterKey.length !== 32) throw new Error('master key must be 32 bytes');
  const macKeys = new Map<string, Buffer>();
  const macKey = (purpose: string) => {
    let key = macKeys.get(purpose);
    if (!key) {
      key = Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), `crm-core mac: ${purpose}`, 32));
      macKeys.set(purpose, key);
    }
    return key;
  };
  return {
    mac: (purpose, message) => createHmac('sha256', macKey(purpose)).update(message, 'utf8').digest('base64url'),
    seal(plaintext, associatedData) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', masterKey, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(Buffer.from(associatedData, 'utf8'));
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return `${VERSION}:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`;
    },
    open(sealed, associatedData) {
      const [version, payload, ...extra] = sealed.split(':');
      if (version !== VERSION || !payload || extra.length > 0) throw new Error('unknown sealed secret format');
      const raw = Buffer.from(payload, 'base64');
      // GCM would also verify a truncated tag (down to 4 bytes, i.e. forgeable by brute force):
      // insist on the full 16 bytes we write.
      if (raw.length < IV_BYTES + TAG_BYTES) throw new Error('sealed secret is truncated');
      const decipher = createDecipheriv('aes-256-gcm', masterKey, raw.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(associatedData, 'utf8'));
      decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
    },
  };
}
