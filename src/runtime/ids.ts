import { KataError } from '../errors.js';

const ID_RE = /^[A-Za-z0-9_.+-]+$/;

/** The agent protocol's limit for container and exec ids (docs/protocol.md). */
export const MAX_ID_LENGTH = 128;

/**
 * Container ids as runc accepts them; `.` and `..` would name directories outside the container
 * dir. At most 128 characters, the guest agent's limit: a longer id used to pass here and fail
 * only once the VM had booted (runc's limit is the file name's, 255; docs/cli-compat.md).
 */
export function validateId(id: string): string {
  if (id === '' || !ID_RE.test(id) || id === '.' || id === '..') {
    throw new KataError('E_INVALID_ID', `invalid container id ${JSON.stringify(id.slice(0, 200))}: use only [A-Za-z0-9_.+-]`);
  }
  if (id.length > MAX_ID_LENGTH) {
    throw new KataError('E_INVALID_ID', `invalid container id: ${id.length} characters, at most ${MAX_ID_LENGTH}`);
  }
  return id;
}
