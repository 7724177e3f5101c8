/**
 * Roles the program owns (the read-only reviewer): attributes, memberships and everything else the role holds,
 * converged to exactly the model's. The password is the one secret a spec cannot carry: the spec names the
 * environment variable that holds it, the server receives only a SCRAM verifier, and a read checks it by logging in.
 *
 * An adopted role (stage2:reviewer names one that exists) or a role that gained something out of band is reduced
 * to the model in one transaction: attributes, password, memberships, settings, privileges anywhere in the
 * database, large objects it stored. What the owner role cannot or should not take away (an object it owns, a
 * policy that names it, a privilege another role granted) stops the change, named, before anything is changed.
 */
import { parseDatabaseUrl } from "../../config/database-url";
import { PROJECT_ROOT } from "../../config/project";
import { roleOfUser } from "../../config/schema";
import { roleFootprintQuery, roleGrantSchemasQuery, rolesQuery } from "../introspect";
import * as render from "../render";
import { scramVerifier } from "../scram";
import type { RoleSpec } from "../specs";
import type { Db } from "../db";
import { stackCredentials } from "../stack-config";
import { DatabaseError } from "../../transports/transport";
import type { ObjectKind } from "./kind";

/** How a password that no longer logs in reads back (a rotated secret, or ALTER ROLE by hand). */
export const PASSWORD_REFUSED = "another password (a login with the configured one fails)";

/**
 * The role's password: STAGE2_REVIEWER_PASSWORD, or, in the reviewer's own preview (which holds no other secret),
 * the password it connected with.
 */
function passwordOf(spec: RoleSpec): string {
  const { reviewerPassword, databaseUrl } = stackCredentials();
  if (reviewerPassword) return reviewerPassword;
  const target = databaseUrl ? parseDatabaseUrl(databaseUrl, PROJECT_ROOT).target : undefined;
  if (target && roleOfUser(target.user) === spec.name) return target.password;
  throw new Error(`${spec.password} is not set: export ${spec.password}=<the role's password> (README: Credentials)`);
}

async function readRole(db: Db, spec: RoleSpec, fresh: boolean, logins = true): Promise<RoleSpec | undefined> {
  type Read = Omit<RoleSpec, "password" | "grantedBy">;
  const query = rolesQuery(spec.name, spec.grantedBy ?? []);
  const read = fresh
    ? (await db.read<{ spec: Read }>(query))[0]?.spec
    : (await db.snapshot<Read>(query)).get(spec.name);
  if (!read) return undefined;
  // A role without LOGIN cannot log in whatever its password: that difference is the attribute's alone.
  const refused = logins && read.login && (await db.transport.canLogIn?.(spec.name, passwordOf(spec))) === false;
  return {
    ...read,
    // Not known until an up records what the model grants (state of an earlier release): not read yet.
    holds: spec.grantedBy === null ? [] : read.holds,
    grantedBy: spec.grantedBy,
    password: refused ? PASSWORD_REFUSED : spec.password,
  };
}

/** What the role holds beyond the model, each with the statement that takes it away (null: a person decides). */
async function footprint(db: Db, spec: RoleSpec): Promise<{ what: string; remedy: string | null }[]> {
  return db.read(roleFootprintQuery(spec.name, spec.grantedBy ?? []));
}

/**
 * Converges the role from `live` in one transaction. `adopting`: the role existed before the stack knew it, so its
 * password is set whatever it is now (a login may still work with an old one, which is no proof of the model's).
 */
async function converge(db: Db, live: RoleSpec, spec: RoleSpec, adopting: boolean): Promise<RoleSpec> {
  const held = live.holds.length ? await footprint(db, spec) : [];
  const kept = held.filter((h) => h.remedy === null).map((h) => h.what);
  if (kept.length) {
    throw new Error(
      `role ${spec.name} ${kept.join("; ")}, which a read-only role must not; nothing was changed. Drop or ` +
        `reassign it (as a member of ${spec.name}: DROP OWNED BY / REASSIGN OWNED BY ${spec.name} TO postgres, ` +
        "ALTER POLICY ... TO other roles), then run up again",
    );
  }
  const setPassword = adopting || live.password !== spec.password || (!live.login && spec.login);
  const statements = [
    ...render.alterRole(live, spec, setPassword ? scramVerifier(passwordOf(spec)) : undefined),
    ...(held.length
      ? render.reduceRole(
          spec.name,
          held.map((h) => h.remedy!),
          roleFootprintQuery(spec.name, spec.grantedBy ?? []),
        )
      : []),
  ];
  try {
    if (statements.length) await db.write(statements);
  } catch (error) {
    // PostgreSQL 15 lets only a superuser take SUPERUSER, REPLICATION or BYPASSRLS away (16 and later let a
    // CREATEROLE role that holds it and administers the role), and only a privilege's grantor may revoke it.
    if (!(error instanceof DatabaseError && error.sqlstate === "42501")) throw error;
    const name = spec.name;
    const remedies = held.map((h) => h.remedy).filter((r) => r && r !== "lo_unlink");
    throw new Error(
      `role ${name} holds a power the owner role may not take away (${error.message.split(" (SQLSTATE")[0]}); ` +
        `nothing was changed. Have a superuser run ALTER ROLE ${name} with the NO<power> forms` +
        `${remedies.length ? ` and ${remedies.join("; ")}` : ""} (on Supabase: support), or DROP ROLE ${name} and ` +
        "run up again, which recreates it",
    );
  }
  const after = (await readRole(db, spec, true))!;
  if (after.password !== spec.password) {
    throw new Error(
      `role ${spec.name}: a login with ${spec.password} still fails after setting it; check that the server lets ` +
        `the role log in where up connects (pg_hba.conf, the pooler's user ${spec.name}.<ref>)`,
    );
  }
  return after;
}

export const roles: ObjectKind<RoleSpec> = {
  describe: (spec) => `role ${spec.name}`,
  id: (spec) => spec.name,
  identityKeys: ["name"],

  async read(db, spec, options) {
    const live = await readRole(db, spec, false, options?.logins !== false);
    return live ? { live } : undefined;
  },

  async create(db, spec) {
    const live = await readRole(db, spec, true);
    if (live) return { observed: await converge(db, live, spec, true) };
    await db.write([render.createRole(spec, scramVerifier(passwordOf(spec)))]);
    const created = await readRole(db, spec, true);
    if (!created) throw new Error(`role ${spec.name} was not found after CREATE ROLE`);
    return { observed: created };
  },

  async update(db, _olds, news) {
    const live = await readRole(db, news, true);
    if (!live) throw new Error(`role ${news.name} does not exist any more`);
    return { observed: await converge(db, live, news, false) };
  },

  async delete(db, spec) {
    if (!(await db.read(rolesQuery(spec.name, spec.grantedBy ?? []))).length) return undefined;
    const schemas = (await db.read<{ schema: string }>(roleGrantSchemasQuery(spec.name))).map((r) => r.schema);
    // Objects it owns or privileges elsewhere (another database) stop the drop: kept (keptForDependents).
    await db.write(render.dropRole(spec, schemas));
    return undefined;
  },
};
