/** A parsed JSON object (not null, not an array): the first check on anything decoded. */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
