/**
 * Samples pg_locks joined with pg_stat_activity from a superuser session of its own, one sample every
 * `intervalMs` (the next one starts when the previous answer arrived plus the interval, so a slow server is
 * never queried twice at once). Each sample records, with the server's clock:
 *
 *   - every application session (application_name = the load's) waiting on any lock: the lock, pg_locks.waitstart
 *     (when the wait began, exact) and pg_blocking_pids() with what those sessions run;
 *   - every relation lock of a mode that blocks application writes (SHARE and stronger) or that a concurrent
 *     index build takes (SHARE UPDATE EXCLUSIVE), held or queued for by any other session of the database,
 *     temporary relations left out (the program's adoption probes create temporary copies).
 *
 * The figures are built from these samples in locks.ts (pure).
 */
import { Client } from "pg";
import type { AppLockWaitSample, HeldLockSample, LockSamples } from "./locks";

const SAMPLE = `
select extract(epoch from clock_timestamp()) * 1000 as at,
  coalesce((
    select json_agg(json_build_object(
      'pid', l.pid,
      'waitStart', extract(epoch from l.waitstart) * 1000,
      'locktype', l.locktype,
      'mode', l.mode,
      'relation', case when l.relation is not null then l.relation::regclass::text end,
      'query', left(a.query, 300),
      'blockers', coalesce((
        select json_agg(json_build_object('pid', b.pid, 'applicationName', b.application_name,
                                          'query', left(b.query, 600)))
        from pg_stat_activity b where b.pid = any (pg_blocking_pids(l.pid))), '[]'::json)))
    from pg_locks l join pg_stat_activity a on a.pid = l.pid
    where not l.granted and a.datname = current_database() and a.application_name = $1
  ), '[]'::json) as waits,
  coalesce((
    select json_agg(json_build_object(
      'pid', l.pid,
      'applicationName', a.application_name,
      'backendType', a.backend_type,
      'relation', l.relation::regclass::text,
      'mode', l.mode,
      'granted', l.granted,
      'waitStart', extract(epoch from l.waitstart) * 1000,
      'xactStart', extract(epoch from a.xact_start) * 1000,
      'query', left(a.query, 2000)))
    from pg_locks l
    join pg_stat_activity a on a.pid = l.pid
    left join pg_class c on c.oid = l.relation
    where l.locktype = 'relation'
      and l.database = (select oid from pg_database where datname = current_database())
      and l.mode in ('ShareUpdateExclusiveLock', 'ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock',
                     'AccessExclusiveLock')
      and coalesce(c.relpersistence, 'p') <> 't'
      and a.pid <> pg_backend_pid()
      and a.application_name is distinct from $1
  ), '[]'::json) as held`;

export class LockSampler {
  private client?: Client;
  private running = false;
  private loop?: Promise<void>;
  private readonly ticks: number[] = [];
  private readonly waits: AppLockWaitSample[] = [];
  private readonly held: HeldLockSample[] = [];
  private failure?: Error;

  constructor(
    private readonly superuserUrl: string,
    /** application_name of the load's sessions (the "application"). */
    private readonly applicationName: string,
    readonly intervalMs = 25,
  ) {}

  async start(): Promise<void> {
    this.client = new Client({ connectionString: this.superuserUrl, application_name: "stage2-lock-sampler" });
    await this.client.connect();
    // regclass then prints every relation schema-qualified (public.contacts, not contacts).
    await this.client.query("set search_path = pg_catalog");
    this.running = true;
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        const { rows } = await this.client!.query<{
          at: number;
          waits: AppLockWaitSample[];
          held: HeldLockSample[];
        }>(SAMPLE, [this.applicationName]);
        const at = Number(rows[0].at);
        this.ticks.push(at);
        for (const w of rows[0].waits) this.waits.push({ ...w, at });
        for (const h of rows[0].held) this.held.push({ ...h, at });
      } catch (error) {
        // A sampler that stopped sampling must not pass for one that saw nothing.
        this.failure = error as Error;
        this.running = false;
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, this.intervalMs));
    }
  }

  /** Everything seen so far between two instants (epoch ms), without stopping. */
  between(from: number, to: number): LockSamples {
    return {
      intervalMs: this.intervalMs,
      ticks: this.ticks.filter((t) => t >= from && t < to),
      waits: this.waits.filter((w) => w.at >= from && w.at < to),
      held: this.held.filter((h) => h.at >= from && h.at < to),
    };
  }

  /** Number of samples taken so far (for a wait on "the sampler has seen the database at least once"). */
  get samples(): number {
    return this.ticks.length;
  }

  async stop(): Promise<LockSamples> {
    this.running = false;
    await this.loop;
    await this.client?.end().catch(() => undefined);
    if (this.failure) throw new Error(`the lock sampler failed: ${this.failure.message}`);
    return this.between(-Infinity, Infinity);
  }
}
