/** Short, readable, unguessable ids for requests, reviews and sessions. Pure apart from randomness. */
import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/** A short, readable, unguessable id (`r` + 10 base32 characters, 50 bits): easy to type in chat. */
export function createId(prefix: string): string {
  const bytes = randomBytes(10);
  let out = prefix;
  for (const b of bytes) out += ALPHABET[b & 31];
  return out;
}

/** Whether text could be an id we issued (cheap check before a store lookup). */
export function isWellFormedId(text: string): boolean {
  return /^[a-z][0-9a-z]{10}$/.test(text);
}
