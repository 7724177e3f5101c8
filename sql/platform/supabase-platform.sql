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
-- 20230201083204: postgres is a member of the API roles (plain membership on PG 15).
grant anon, authenticated, service_role to postgres;
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

alter table storage.buckets owner to supabase_storage_admin;
alter table storage.objects owner to supabase_storage_admin;
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
