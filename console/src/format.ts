// How values of the contract are shown.

import type { Timestamp, Value } from "@bufbuild/protobuf/wkt";
import { ValueSchema, timestampDate } from "@bufbuild/protobuf/wkt";
import { toJsonString } from "@bufbuild/protobuf";

/** An enum value's name without its type's prefix, in lower case with spaces. */
export function enumName(names: Record<number, string>, value: number, prefix: string): string {
  const name = names[value];
  if (!name) return String(value);
  return name.replace(prefix, "").toLowerCase().replace(/_/g, " ");
}

/** A timestamp in local time, ISO-like; "—" when unset. */
export function time(ts: Timestamp | undefined): string {
  if (!ts) return "—";
  const d = timestampDate(ts);
  const pad = (n: number) => String(n).padStart(2, "0");
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}

/** A module's return value as JSON. */
export function json(value: Value | undefined): string {
  if (!value) return "null";
  return toJsonString(ValueSchema, value, { prettySpaces: 2 });
}

/** A `datetime-local` input's value as a Date (undefined when empty). */
export function localDate(value: string | null): Date | undefined {
  if (!value) return undefined;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d;
}
