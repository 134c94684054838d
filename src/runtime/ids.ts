import { KataError } from '../errors.js';

const ID_RE = /^[A-Za-z0-9_.+-]+$/;

/** Container ids as runc accepts them; `.` and `..` would name directories outside the container dir. */
export function validateId(id: string): string {
  if (id === '' || !ID_RE.test(id) || id === '.' || id === '..' || id.length > 1024) {
    throw new KataError('E_INVALID_ID', `invalid container id ${JSON.stringify(id)}: use only [A-Za-z0-9_.+-]`);
  }
  return id;
}
