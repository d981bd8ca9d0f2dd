/**
 * The simulator keeps dates as "yyyy-mm-dd" strings: they sort and compare as text and carry
 * no time zone. The registry shows and accepts them as "dd.mm.yyyy".
 */

const msPerDay = 86_400_000;

/** Whole days since 1970-01-01 (UTC) of a calendar date; handy for picking random dates. */
export function dayNumber(year: number, month: number, day: number): number {
  return Date.UTC(year, month - 1, day) / msPerDay;
}

/** "yyyy-mm-dd" of a day number. */
export function isoDateOfDay(day: number): string {
  return new Date(day * msPerDay).toISOString().slice(0, 10);
}

/** "dd.mm.yyyy", the registry's format, of a "yyyy-mm-dd" date. */
export function registryDate(isoDate: string): string {
  const [year, month, day] = isoDate.split("-");
  return `${day}.${month}.${year}`;
}

/** "yyyy-mm-dd" of a "dd.mm.yyyy" date, or undefined when the text is not a real date. */
export function parseRegistryDate(text: string): string | undefined {
  const match = /^(\d{2})\.(\d{2})\.(\d{4})$/.exec(text);
  if (!match) return undefined;
  const [, day, month, year] = match as unknown as [string, string, string, string];
  const iso = `${year}-${month}-${day}`;
  const parsed = Date.parse(`${iso}T00:00:00Z`);
  // Date.parse accepts 31.02 on some engines by rolling over; a real date formats back the same.
  return Number.isFinite(parsed) && new Date(parsed).toISOString().startsWith(iso)
    ? iso
    : undefined;
}
