-- A plain PostgreSQL 15 made to look like a hosted Supabase database, for the local test bed only.
-- Applied by scripts/localdb.ts as the bootstrap superuser `supabase_admin`, once per cluster, into the
-- template database that every test database is cloned from. Never run against a real project.
--
-- Each block names the platform fact it reproduces (../shared/reference/supabase-platform.md), so a
-- divergence between this file and the platform can be traced to its source.

-- ---------------------------------------------------------------------------------------------------
-- Roles (supabase/postgres init scripts and migrations)
-- ---------------------------------------------------------------------------------------------------
do $$
declare
  r record;
begin
  for r in select * from (values
      ('anon',                   'nologin inherit'),
      ('authenticated',          'nologin inherit'),
      ('service_role',           'nologin inherit bypassrls'),
      ('authenticator',          'login noinherit'),
      ('supabase_auth_admin',    'login noinherit createrole'),
      ('supabase_storage_admin', 'login noinherit createrole'),
      -- 10000000000000_demote-postgres.sql: postgres is NOT a superuser on the platform.
      ('postgres',               'login nosuperuser createdb createrole replication bypassrls')
    ) as t(name, attrs)
  loop
    if not exists (select 1 from pg_roles where rolname = r.name) then
      execute format('create role %I %s', r.name, r.attrs);
    else
      execute format('alter role %I %s', r.name, r.attrs);
    end if;
  end loop;
end
$$;

grant anon, authenticated, service_role to authenticator;
-- 20230201083204: postgres is a member of the API roles (plain membership on PG 15). From PostgreSQL 16 on, where
-- CREATEROLE no longer lets it grant or revoke them, the platform gives it ADMIN OPTION on them.
grant anon, authenticated, service_role to postgres;
do $$
begin
  if current_setting('server_version_num')::int >= 160000 then
    execute 'grant anon, authenticated, service_role to postgres with admin option';
  end if;
end
$$;
-- 20240606060239, 20230306081037
grant pg_read_all_data, pg_signal_backend, pg_monitor to postgres;

-- EMULATION (supautils): on the platform, postgres may CREATE/DROP POLICY on storage.objects through
-- supautils.policy_grants, without owning the table. Plain PostgreSQL only lets the owner do that, so
-- here postgres is made a member of the owner and the event trigger below refuses everything else the
-- platform refuses. Known gap: `set role supabase_storage_admin` succeeds here and fails on the platform.
grant supabase_storage_admin to postgres;

-- ---------------------------------------------------------------------------------------------------
-- Schemas and default privileges
-- ---------------------------------------------------------------------------------------------------
create schema if not exists extensions;
grant usage on schema extensions to postgres, anon, authenticated, service_role;
create extension if not exists pgcrypto with schema extensions;

grant usage on schema public to anon, authenticated, service_role;
grant all on schema public to postgres;

-- Objects that postgres or supabase_admin create in public are granted to the API roles automatically
-- (pg_default_acl: tables arwdDxt, functions X, sequences rwU). RLS is the real gate on Supabase.
alter default privileges for role postgres in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on sequences to anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public grant all on sequences to anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------------------
-- auth (supabase/auth migrations; functions as in 20240624145325_recreate_auth_functions)
-- ---------------------------------------------------------------------------------------------------
create schema if not exists auth authorization supabase_auth_admin;
grant usage on schema auth to anon, authenticated, service_role, postgres;

create table if not exists auth.users (
  id uuid primary key,
  aud text,
  role text,
  email text unique,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);
alter table auth.users owner to supabase_auth_admin;
alter table auth.users enable row level security;
-- The docs' own examples reference auth.users from public tables, so postgres holds REFERENCES too.
grant all on auth.users to postgres;

-- The other auth tables a sign-in writes (supabase/auth migrations), reduced to the columns the test bed's
-- application load uses: the platform's policy_grants list names them, so policy DDL locks them (below).
create table if not exists auth.identities (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  provider text not null,
  last_sign_in_at timestamptz
);
create table if not exists auth.sessions (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  created_at timestamptz default now(),
  refreshed_at timestamptz
);
create table if not exists auth.refresh_tokens (
  id bigserial primary key,
  token text unique,
  user_id text,
  session_id uuid references auth.sessions (id) on delete cascade,
  revoked boolean default false,
  created_at timestamptz default now()
);
create table if not exists auth.audit_log_entries (
  id uuid primary key default gen_random_uuid(),
  payload json,
  created_at timestamptz default now()
);
alter table auth.identities owner to supabase_auth_admin;
alter table auth.sessions owner to supabase_auth_admin;
alter table auth.refresh_tokens owner to supabase_auth_admin;
alter sequence auth.refresh_tokens_id_seq owner to supabase_auth_admin;
alter table auth.audit_log_entries owner to supabase_auth_admin;

create or replace function auth.uid() returns uuid
language sql stable
set search_path to ''
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role() returns text
language sql stable
set search_path to ''
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

create or replace function auth.email() returns text
language sql stable
set search_path to ''
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;

create or replace function auth.jwt() returns jsonb
language sql stable
set search_path to ''
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

alter function auth.uid() owner to supabase_auth_admin;
alter function auth.role() owner to supabase_auth_admin;
alter function auth.email() owner to supabase_auth_admin;
alter function auth.jwt() owner to supabase_auth_admin;

-- ---------------------------------------------------------------------------------------------------
-- storage (supabase/storage migrations/tenant; owned by supabase_storage_admin)
-- ---------------------------------------------------------------------------------------------------
create schema if not exists storage authorization supabase_storage_admin;
grant usage on schema storage to postgres, anon, authenticated, service_role;

do $$
begin
  if not exists (select 1 from pg_type t join pg_namespace n on n.oid = t.typnamespace
                 where n.nspname = 'storage' and t.typname = 'buckettype') then
    create type storage.buckettype as enum ('STANDARD', 'ANALYTICS', 'VECTOR');
  end if;
end
$$;
alter type storage.buckettype owner to supabase_storage_admin;

create table if not exists storage.buckets (
  id text primary key,
  name text not null,
  owner uuid,
  owner_id text,
  public boolean default false,
  file_size_limit bigint,
  allowed_mime_types text[],
  avif_autodetection boolean default false,
  type storage.buckettype not null default 'STANDARD',
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);
create unique index if not exists bname on storage.buckets (name);

create table if not exists storage.objects (
  id uuid primary key default gen_random_uuid(),
  bucket_id text references storage.buckets (id),
  name text,
  owner uuid,
  owner_id text,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  last_accessed_at timestamptz default now(),
  metadata jsonb,
  user_metadata jsonb,
  version text,
  path_tokens text[] generated always as (string_to_array(name, '/')) stored
);
create unique index if not exists bucketid_objname on storage.objects (bucket_id, name);

-- The storage server's own tables that the platform's policy_grants list names (supabase/storage migrations).
create table if not exists storage.migrations (id integer primary key, name varchar(100) unique not null);
create table if not exists storage.s3_multipart_uploads (
  id text primary key,
  bucket_id text not null references storage.buckets (id),
  key text not null
);
create table if not exists storage.s3_multipart_uploads_parts (
  id uuid primary key default gen_random_uuid(),
  upload_id text not null references storage.s3_multipart_uploads (id) on delete cascade,
  part_number integer not null
);

alter table storage.buckets owner to supabase_storage_admin;
alter table storage.objects owner to supabase_storage_admin;
alter table storage.migrations owner to supabase_storage_admin;
alter table storage.s3_multipart_uploads owner to supabase_storage_admin;
alter table storage.s3_multipart_uploads_parts owner to supabase_storage_admin;
alter table storage.buckets enable row level security;
alter table storage.objects enable row level security;

-- 20250421084701: postgres keeps full DML on the storage tables, with grant option.
grant all on storage.buckets, storage.objects to postgres with grant option;
grant all on storage.buckets, storage.objects to anon, authenticated, service_role;

create or replace function storage.foldername(name text) returns text[]
language plpgsql immutable
as $$
declare
  _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[1 : array_length(_parts, 1) - 1];
end
$$;

create or replace function storage.filename(name text) returns text
language plpgsql immutable
as $$
declare
  _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[array_length(_parts, 1)];
end
$$;

create or replace function storage.extension(name text) returns text
language plpgsql immutable
as $$
declare
  _parts text[];
  _filename text;
begin
  select string_to_array(name, '/') into _parts;
  select _parts[array_length(_parts, 1)] into _filename;
  return reverse(split_part(reverse(_filename), '.', 1));
end
$$;

-- 0037: bucket ids longer than 100 characters are rejected.
create or replace function storage.enforce_bucket_name_length() returns trigger
language plpgsql
as $$
begin
  if length(new.name) > 100 then
    raise exception 'bucket name "%" is too long (% characters). Max is 100.', new.name, length(new.name);
  end if;
  return new;
end
$$;
drop trigger if exists enforce_bucket_name_length_trigger on storage.buckets;
create trigger enforce_bucket_name_length_trigger
  before insert or update of name on storage.buckets
  for each row execute function storage.enforce_bucket_name_length();

-- 0055: plain DELETE on the storage tables is refused for every role unless the transaction sets
-- storage.allow_delete_query = 'true'.
create or replace function storage.protect_delete() returns trigger
language plpgsql
as $$
begin
  if coalesce(current_setting('storage.allow_delete_query', true), '') <> 'true' then
    raise exception 'Direct deletion from storage tables is not allowed. Use the Storage API instead.'
      using errcode = '42501',
            hint = 'Set storage.allow_delete_query to true in the same transaction to delete through SQL.';
  end if;
  return null;
end
$$;
drop trigger if exists protect_buckets_delete on storage.buckets;
create trigger protect_buckets_delete before delete on storage.buckets
  for each statement execute function storage.protect_delete();
drop trigger if exists protect_objects_delete on storage.objects;
create trigger protect_objects_delete before delete on storage.objects
  for each statement execute function storage.protect_delete();

alter function storage.foldername(text) owner to supabase_storage_admin;
alter function storage.filename(text) owner to supabase_storage_admin;
alter function storage.extension(text) owner to supabase_storage_admin;
alter function storage.enforce_bucket_name_length() owner to supabase_storage_admin;
alter function storage.protect_delete() owner to supabase_storage_admin;

-- ---------------------------------------------------------------------------------------------------
-- The 2025-04-21 lockdown ("Restricting Access on Auth, Storage, and Realtime Schemas"), as supautils
-- enforces it: postgres may manage policies (and triggers) on the storage/auth tables, and nothing else.
-- ---------------------------------------------------------------------------------------------------
create schema if not exists supabase_platform;
revoke all on schema supabase_platform from public;

create or replace function supabase_platform.refuse_locked_schema_ddl() returns event_trigger
language plpgsql
as $$
declare
  cmd record;
begin
  if current_user <> 'postgres' and session_user <> 'postgres' then
    return;
  end if;
  for cmd in select * from pg_event_trigger_ddl_commands() loop
    continue when cmd.command_tag in ('CREATE POLICY', 'ALTER POLICY', 'DROP POLICY', 'CREATE TRIGGER',
                                      'GRANT', 'REVOKE');
    if cmd.schema_name in ('storage', 'auth')
       or cmd.object_identity ~ ' on (storage|auth)\.' then
      if cmd.command_tag in ('CREATE TABLE', 'CREATE FUNCTION', 'CREATE VIEW', 'CREATE SEQUENCE',
                             'CREATE TYPE', 'CREATE TABLE AS') then
        raise exception 'permission denied for schema %', cmd.schema_name using errcode = '42501';
      end if;
      -- The platform names the table, also for CREATE INDEX (whose object is the index).
      raise exception 'must be owner of table %',
        coalesce((select c.relname from pg_index i join pg_class c on c.oid = i.indrelid
                  where i.indexrelid = cmd.objid and cmd.object_type = 'index'),
                 substring(cmd.object_identity from '\.([^.]+)$'), cmd.object_identity)
        using errcode = '42501';
    end if;
  end loop;
end
$$;

create or replace function supabase_platform.refuse_locked_schema_drop() returns event_trigger
language plpgsql
as $$
declare
  obj record;
begin
  if current_user <> 'postgres' and session_user <> 'postgres' then
    return;
  end if;
  for obj in select * from pg_event_trigger_dropped_objects() loop
    continue when obj.object_type in ('policy', 'trigger');
    if obj.schema_name in ('storage', 'auth') and obj.original then
      raise exception 'must be owner of % %', obj.object_type, obj.object_name using errcode = '42501';
    end if;
  end loop;
end
$$;

drop event trigger if exists supabase_platform_refuse_ddl;
create event trigger supabase_platform_refuse_ddl on ddl_command_end
  execute function supabase_platform.refuse_locked_schema_ddl();
drop event trigger if exists supabase_platform_refuse_drop;
create event trigger supabase_platform_refuse_drop on sql_drop
  execute function supabase_platform.refuse_locked_schema_drop();

-- ---------------------------------------------------------------------------------------------------
-- realtime.messages, the one realtime table of the list below (supabase/realtime migrations)
-- ---------------------------------------------------------------------------------------------------
create schema if not exists realtime;
create table if not exists realtime.messages (
  id bigserial primary key,
  topic text not null,
  extension text not null,
  payload jsonb,
  inserted_at timestamp default now()
);

-- ---------------------------------------------------------------------------------------------------
-- EMULATION (supautils 3.4.0 src/policy_grants.c, ../shared/reference/supabase-platform.md "Locks that
-- policy DDL takes on the platform"): for every CREATE, ALTER or DROP POLICY by a role that
-- supautils.policy_grants lists (postgres), supautils locks the target table, then each table of the role's
-- list in order, ACCESS EXCLUSIVE, until it reaches the target (all of them when the target is not listed: a
-- policy on an app table, or on a temporary copy), held to the end of the transaction. The list is the
-- platform's (supabase/postgres ansible/files/postgresql_config/supautils.conf.j2).
--
-- Here PostgreSQL itself locks the target first (CREATE, ALTER and DROP POLICY take ACCESS EXCLUSIVE on it),
-- and these triggers, at the end of the command, walk the list in the same order: the same locks, taken in the
-- same order, held as long. Only the moment differs (the platform walks before the command runs, here after),
-- which no lock order depends on.
-- ---------------------------------------------------------------------------------------------------
alter role postgres set "supautils.policy_grants" = '{"postgres": ["auth.audit_log_entries", "auth.identities", "auth.refresh_tokens", "auth.sessions", "auth.users", "realtime.messages", "storage.buckets", "storage.migrations", "storage.objects", "storage.s3_multipart_uploads", "storage.s3_multipart_uploads_parts"]}';

-- The walk, for a policy on `target` by `role`, run as the superuser that owns this function: LOCK TABLE needs
-- a privilege postgres lacks on most listed tables.
create or replace function supabase_platform.lock_policy_grants(target oid, role name) returns void
language plpgsql security definer set search_path = ''
as $$
declare
  listed text;
  table_id oid;
begin
  for listed in
    select jsonb_array_elements_text(coalesce(current_setting('supautils.policy_grants', true), '{}')::jsonb -> role)
  loop
    table_id := pg_catalog.to_regclass(listed);
    continue when table_id is null;
    execute format('lock table only %s in access exclusive mode', table_id::regclass);
    exit when table_id = target;
  end loop;
end
$$;
revoke all on function supabase_platform.lock_policy_grants(oid, name) from public;
grant usage on schema supabase_platform to postgres;
grant execute on function supabase_platform.lock_policy_grants(oid, name) to postgres;

-- Runs as the role that ran the command (not security definer), which is whose list supautils walks.
create or replace function supabase_platform.policy_grants_locks() returns event_trigger
language plpgsql set search_path = ''
as $$
declare
  cmd record;
begin
  -- supautils acts for the roles its list names, and never for a superuser.
  if (select rolsuper from pg_catalog.pg_roles where rolname = current_user)
     or not coalesce(current_setting('supautils.policy_grants', true), '{}')::jsonb ? current_user::text then
    return;
  end if;
  if tg_event = 'sql_drop' then
    for cmd in select * from pg_catalog.pg_event_trigger_dropped_objects() loop
      continue when cmd.object_type <> 'policy' or not cmd.original;
      perform supabase_platform.lock_policy_grants(
        pg_catalog.to_regclass(substring(cmd.object_identity from ' on (.*)$')), current_user);
    end loop;
  else
    for cmd in select * from pg_catalog.pg_event_trigger_ddl_commands() loop
      continue when cmd.command_tag not in ('CREATE POLICY', 'ALTER POLICY');
      perform supabase_platform.lock_policy_grants(
        (select polrelid from pg_catalog.pg_policy where oid = cmd.objid), current_user);
    end loop;
  end if;
end
$$;

drop event trigger if exists supabase_platform_policy_locks;
create event trigger supabase_platform_policy_locks on ddl_command_end
  when tag in ('CREATE POLICY', 'ALTER POLICY')
  execute function supabase_platform.policy_grants_locks();
drop event trigger if exists supabase_platform_policy_drop_locks;
create event trigger supabase_platform_policy_drop_locks on sql_drop
  when tag in ('DROP POLICY')
  execute function supabase_platform.policy_grants_locks();
