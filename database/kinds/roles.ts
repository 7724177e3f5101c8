/**
 * Roles the program owns (the read-only reviewer): attributes and memberships from pg_roles, converged with
 * ALTER ROLE naming only what differs. The password is the one secret a spec cannot carry: the spec names the
 * stack setting that holds it, the server receives only a SCRAM verifier, and a read checks it by logging in.
 */
import { roleGrantSchemasQuery, rolesQuery } from "../introspect";
import * as render from "../render";
import { scramVerifier } from "../scram";
import type { RoleSpec } from "../specs";
import type { Db } from "../db";
import { settingAt } from "../stack-config";
import { DatabaseError } from "../../transports/transport";
import type { ObjectKind } from "./kind";

/** How a password that no longer logs in reads back (a rotated secret, or ALTER ROLE by hand). */
export const PASSWORD_REFUSED = "another password (a login with the configured one fails)";

function passwordOf(spec: RoleSpec): string {
  const password = settingAt(spec.password);
  if (typeof password !== "string" || !password) {
    throw new Error(`${spec.password} is not set: pulumi config set --secret --path ${spec.password} <password>`);
  }
  return password;
}

async function readRole(db: Db, spec: RoleSpec, fresh: boolean): Promise<RoleSpec | undefined> {
  type Attributes = Omit<RoleSpec, "password">;
  const query = rolesQuery(spec.name);
  const attributes = fresh
    ? (await db.read<{ spec: Attributes }>(query))[0]?.spec
    : (await db.snapshot<Attributes>(query)).get(spec.name);
  if (!attributes) return undefined;
  // A role without LOGIN cannot log in whatever its password: that difference is the attribute's alone.
  const refused = attributes.login && (await db.transport.canLogIn?.(spec.name, passwordOf(spec))) === false;
  return { ...attributes, password: refused ? PASSWORD_REFUSED : spec.password };
}

async function converge(db: Db, live: RoleSpec, spec: RoleSpec): Promise<RoleSpec> {
  const verifier = live.password === spec.password ? undefined : scramVerifier(passwordOf(spec));
  const statements = render.alterRole(live, spec, verifier);
  try {
    if (statements.length) await db.write(statements);
  } catch (error) {
    // PostgreSQL 15 lets only a superuser take SUPERUSER, REPLICATION or BYPASSRLS away (16 and later let a
    // CREATEROLE role that holds it and administers the role): a power someone gave it by hand stays.
    if (!(error instanceof DatabaseError && error.sqlstate === "42501")) throw error;
    const name = spec.name;
    throw new Error(
      `role ${name} holds a power the owner role may not take away (${error.message.split(" (SQLSTATE")[0]}); ` +
        `nothing was changed. Have a superuser run ALTER ROLE ${name} with the NO<power> forms (on Supabase: ` +
        `support), or DROP ROLE ${name} and run up again, which recreates it`,
    );
  }
  return (await readRole(db, spec, true))!;
}

export const roles: ObjectKind<RoleSpec> = {
  describe: (spec) => `role ${spec.name}`,
  id: (spec) => spec.name,
  identityKeys: ["name"],

  async read(db, spec) {
    const live = await readRole(db, spec, false);
    return live ? { live } : undefined;
  },

  async create(db, spec) {
    const live = await readRole(db, spec, true);
    if (live) return { observed: await converge(db, live, spec) };
    await db.write([render.createRole(spec, scramVerifier(passwordOf(spec)))]);
    const created = await readRole(db, spec, true);
    if (!created) throw new Error(`role ${spec.name} was not found after CREATE ROLE`);
    return { observed: created };
  },

  async update(db, _olds, news) {
    const live = await readRole(db, news, true);
    if (!live) throw new Error(`role ${news.name} does not exist any more`);
    return { observed: await converge(db, live, news) };
  },

  async delete(db, spec) {
    if (!(await db.read(rolesQuery(spec.name))).length) return undefined;
    const schemas = (await db.read<{ schema: string }>(roleGrantSchemasQuery(spec.name))).map((r) => r.schema);
    try {
      await db.write(render.dropRole(spec, schemas));
    } catch (error) {
      // 2BP01: it owns objects or holds privileges elsewhere (another database, granted by hand).
      if (!(error instanceof DatabaseError && error.sqlstate === "2BP01")) throw error;
      return { kept: `it still owns objects or holds privileges the model does not know: ${error.message}` };
    }
    return undefined;
  },
};
