// RFC 3339 §5.6 `date-time`, strictly: what `Date.parse` accepts is far wider
// ("1", "2024", "Tue Mar 05 2024") and it rolls impossible dates over
// ("2024-02-30" becomes March 1st), so a client's `sent_at` could not be read
// back by another client's RFC 3339 parser. Hand-written because the check is
// one regular expression and a calendar; no library is needed for it.
//
// Accepted: `T`/`t` between date and time, `Z`/`z` or a `+hh:mm`/`-hh:mm`
// offset (required), fractional seconds of any length, and second 60 only as a
// leap second, i.e. at 23:59:60 UTC (§5.7; whether a leap second really was
// inserted that day is not checked).
const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;

const MINUTES_PER_DAY = 24 * 60;

export function isRfc3339DateTime(text: string): boolean {
  const m = DATE_TIME.exec(text);
  if (m === null) return false;
  // Every group but the offset's always matches; Number() of digits is exact.
  const n = (i: number): number => Number(m[i] ?? 0);
  const [year, month, day, hour, minute, second] = [n(1), n(2), n(3), n(4), n(5), n(6)];
  const sign = m[7] === "-" ? -1 : 1;
  const offsetHour = n(8);
  const offsetMinute = n(9);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return false;
  if (hour > 23 || minute > 59 || second > 60) return false;
  if (offsetHour > 23 || offsetMinute > 59) return false;
  if (second === 60) {
    const local = hour * 60 + minute;
    const utc = local - sign * (offsetHour * 60 + offsetMinute);
    const utcOfDay = ((utc % MINUTES_PER_DAY) + MINUTES_PER_DAY) % MINUTES_PER_DAY;
    if (utcOfDay !== MINUTES_PER_DAY - 1) return false;
  }
  return true;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return isLeapYear(year) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

function isLeapYear(year: number): boolean {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}
