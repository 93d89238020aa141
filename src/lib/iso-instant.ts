/**
 * ISO-8601 instants as real clients send them: with or without milliseconds (any
 * fraction digits), `Z` or a `±hh:mm` offset. Returns epoch milliseconds or null.
 */
const ISO_INSTANT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

export function parseInstant(value: string): number | null {
  const m = ISO_INSTANT.exec(value);
  if (!m) return null;
  const [, y, mo, d, h, mi, s, , zone] = m;
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) return null;
  if (zone !== 'Z') {
    const zh = Number(zone!.slice(1, 3));
    const zm = Number(zone!.slice(4, 6));
    if (zh > 23 || zm > 59) return null;
  }
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) return null;
  // Date.parse rolls 2026-02-30 over to March; refuse calendar dates that do not exist.
  const check = new Date(Date.UTC(Number(y), month - 1, day));
  if (check.getUTCDate() !== day) return null;
  return ms;
}
