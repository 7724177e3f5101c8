/**
 * A TCP proxy on loopback that makes a local database look far away: every chunk is held for `delayMs`
 * before it is forwarded, in both directions, in order. A request/response round trip through it therefore
 * costs 2 x delayMs more than a direct one (the benchmark sets delayMs to half the round-trip time it
 * simulates). Used by bench/preview.ts to show what a remote production database adds to a preview.
 *
 *   node scripts/lib/run.js bench/latency-proxy.ts --target 127.0.0.1:5432 [--delay 20] [--port 0]
 *
 * prints `127.0.0.1:<port>` once listening, and runs until interrupted.
 */
import * as net from "node:net";

export interface LatencyProxyOptions {
  readonly targetHost: string;
  readonly targetPort: number;
  /** Added to each chunk in each direction (so to each round trip twice); default 20. */
  readonly delayMs?: number;
  /** Port to listen on (default: any free one). */
  readonly port?: number;
}

export interface LatencyProxy {
  readonly host: string;
  readonly port: number;
  readonly delayMs: number;
  /** Stops listening and drops every open connection. */
  close(): Promise<void>;
}

/**
 * Forwards `from` to `to`, each chunk `delayMs` after it arrived. One timer per direction drains a FIFO, so
 * chunks keep their order even when the event loop is late, and the end of the stream follows the last chunk.
 */
function delayedPipe(from: net.Socket, to: net.Socket, delayMs: number): void {
  const queue: { due: number; chunk: Buffer | null }[] = [];
  let timer: NodeJS.Timeout | undefined;
  const drain = (): void => {
    timer = undefined;
    const now = performance.now();
    while (queue.length && queue[0].due <= now) {
      const { chunk } = queue.shift()!;
      if (to.destroyed) return;
      if (chunk === null) to.end();
      else to.write(chunk);
    }
    if (queue.length) timer = setTimeout(drain, Math.max(0, queue[0].due - performance.now()));
  };
  const enqueue = (chunk: Buffer | null): void => {
    queue.push({ due: performance.now() + delayMs, chunk });
    timer ??= setTimeout(drain, delayMs);
  };
  let ended = false;
  from.on("data", (chunk: Buffer) => enqueue(chunk));
  from.on("end", () => {
    ended = true;
    enqueue(null);
  });
  // Closed without an orderly end (destroyed, reset): the other side is ended after what is in flight.
  from.on("close", () => {
    if (!ended) enqueue(null);
  });
}

export function startLatencyProxy(options: LatencyProxyOptions): Promise<LatencyProxy> {
  const delayMs = options.delayMs ?? 20;
  if (!Number.isFinite(delayMs) || delayMs < 0) throw new Error(`latency proxy: delay must be >= 0 ms, not ${delayMs}`);
  const sockets = new Set<net.Socket>();
  // Half-open: one side's end travels (delayed) to the other, which may still answer before it ends too.
  const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (client) => {
    const upstream = net.connect({
      host: options.targetHost,
      port: options.targetPort,
      noDelay: true,
      allowHalfOpen: true,
    });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    }
    // Either side failing ends the pair: the database client sees a dropped connection, as it would remotely.
    const fail = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", fail);
    upstream.on("error", fail);
    delayedPipe(client, upstream, delayMs);
    delayedPipe(upstream, client, delayMs);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      const address = server.address() as net.AddressInfo;
      resolve({
        host: "127.0.0.1",
        port: address.port,
        delayMs,
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

function parseTarget(value: string): { host: string; port: number } {
  const match = /^(.+):(\d+)$/.exec(value);
  if (!match) throw new Error(`--target must be host:port (e.g. 127.0.0.1:5432), not "${value}"`);
  return { host: match[1], port: Number(match[2]) };
}

async function main(argv: string[]): Promise<void> {
  const option = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const target = option("--target");
  if (!target) throw new Error("--target host:port is required (the database to put at a distance)");
  const { host, port } = parseTarget(target);
  const proxy = await startLatencyProxy({
    targetHost: host,
    targetPort: port,
    delayMs: Number(option("--delay") ?? 20),
    port: Number(option("--port") ?? 0),
  });
  process.stdout.write(`${proxy.host}:${proxy.port}\n`);
  process.on("SIGINT", () => void proxy.close().then(() => process.exit(0)));
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error: Error) => {
    process.stderr.write(`latency-proxy: ${error.message}\n`);
    process.exit(1);
  });
}
