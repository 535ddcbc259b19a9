// Due dates: the API speaks UTC (RFC 3339), the person their browser's time zone.

const pad = (n) => String(n).padStart(2, "0");

// "2026-01-02T17:00:00.000000Z" -> "2026-01-02T18:00" (a datetime-local value, local time).
export function toLocalInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// A datetime-local value (local time) -> RFC 3339 in UTC; "" -> null.
export function fromLocalInput(value) {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

const display = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function formatDate(iso) {
  return display.format(new Date(iso));
}

export function browserZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}
