/**
 * Quoting for the SQL that cannot take bind parameters (DDL). Values in DML always travel as parameters;
 * these helpers are for identifiers and for the few literals that DDL must spell out.
 */

/** Quotes an identifier the way PostgreSQL's quote_ident/format('%I') does, always. */
export function ident(name: string): string {
  if (name.length === 0) throw new Error("empty SQL identifier");
  if (name.includes("\u0000")) throw new Error(`SQL identifier contains a NUL byte: ${JSON.stringify(name)}`);
  return `"${name.replace(/"/g, '""')}"`;
}

/** `"schema"."name"` */
export function qualified(schema: string, name: string): string {
  return `${ident(schema)}.${ident(name)}`;
}

/** A string literal as format('%L') spells it (standard_conforming_strings is on in every supported server). */
export function literal(value: string): string {
  if (value.includes("\u0000")) throw new Error(`SQL literal contains a NUL byte: ${JSON.stringify(value)}`);
  return `'${value.replace(/'/g, "''")}'`;
}

/** Splits `schema.name` (as used in specs for referenced tables). */
export function splitQualified(name: string): { schema: string; name: string } {
  const dot = name.indexOf(".");
  if (dot <= 0) throw new Error(`expected a schema-qualified name like public.projects, got "${name}"`);
  return { schema: name.slice(0, dot), name: name.slice(dot + 1) };
}

/**
 * The oid of a table, or null, looked up in the catalogs: unlike to_regclass(), it needs no USAGE on the
 * schema (the read-only reviewer has none on storage or auth, and to_regclass raises rather than answer null).
 */
export function relationOid(schema: string, name: string): string {
  return (
    "(select c.oid from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace " +
    `where n.nspname = ${literal(schema)} and c.relname = ${literal(name)})`
  );
}
