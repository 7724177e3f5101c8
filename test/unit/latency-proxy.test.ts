import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import * as net from "node:net";
import { Client } from "pg";
import { startLatencyProxy, type LatencyProxy } from "../../bench/latency-proxy";
import { freshDatabase, type TestDatabase } from "../support/database";

/** An echo server: whatever arrives goes straight back. */
function echoServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.pipe(socket);
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({
        port: (server.address() as net.AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      }),
    ),
  );
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port, noDelay: true }, () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Sends `payload` and resolves once as many bytes came back, with the bytes and the elapsed time. */
function exchange(socket: net.Socket, payload: Buffer): Promise<{ echoed: Buffer; ms: number }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const started = performance.now();
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      received += chunk.length;
      if (received >= payload.length) {
        socket.off("data", onData);
        resolve({ echoed: Buffer.concat(chunks), ms: performance.now() - started });
      }
    };
    socket.on("data", onData);
    socket.write(payload);
  });
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

describe("latency proxy (bench/latency-proxy.ts)", function () {
  const DELAY = 40;
  // The machine is shared and loaded: only the lower bound is strict; the upper bound catches a proxy that
  // adds the delay many times over (per byte, or per chunk cumulatively).
  const SLACK = 250;
  let echo: Awaited<ReturnType<typeof echoServer>>;
  let proxy: LatencyProxy;

  before(async () => {
    echo = await echoServer();
    proxy = await startLatencyProxy({ targetHost: "127.0.0.1", targetPort: echo.port, delayMs: DELAY });
  });
  after(async () => {
    await proxy.close();
    await echo.close();
  });

  it("forwards a megabyte in many chunks intact and in order, both ways", async () => {
    const socket = await connect(proxy.port);
    try {
      const payload = randomBytes(1024 * 1024);
      const { echoed } = await exchange(socket, payload);
      assert.equal(echoed.length, payload.length);
      assert.ok(echoed.equals(payload), "the bytes that came back differ from the bytes sent");
    } finally {
      socket.destroy();
    }
  });

  it("adds at least the configured delay in each direction to every round trip", async () => {
    const direct = await connect(echo.port);
    const proxied = await connect(proxy.port);
    try {
      const directMs: number[] = [];
      const proxiedMs: number[] = [];
      for (let i = 0; i < 5; i++) {
        const message = Buffer.from(`ping ${i}`);
        const d = await exchange(direct, message);
        const p = await exchange(proxied, message);
        assert.ok(p.echoed.equals(message));
        directMs.push(d.ms);
        proxiedMs.push(p.ms);
      }
      // Timers never fire early, so every single round trip pays the full delay twice (1 ms clock tolerance).
      for (const ms of proxiedMs) assert.ok(ms >= 2 * DELAY - 1, `a round trip took ${ms.toFixed(1)} ms`);
      const added = median(proxiedMs) - median(directMs);
      assert.ok(added < 2 * DELAY + SLACK, `the proxy added ${added.toFixed(1)} ms per round trip`);
    } finally {
      direct.destroy();
      proxied.destroy();
    }
  });

  it("passes the end of a stream on after the last delayed chunk", async () => {
    const socket = await connect(proxy.port);
    const closed = new Promise<number>((resolve) => socket.on("close", () => resolve(performance.now())));
    const started = performance.now();
    socket.end(Buffer.from("last words"));
    let echoed = "";
    socket.on("data", (d: Buffer) => (echoed += d.toString()));
    const at = await closed;
    assert.equal(echoed, "last words");
    assert.ok(at - started >= 2 * DELAY - 1, "the stream closed before its data could have made the trip");
  });

  describe("in front of PostgreSQL", function () {
    let db: TestDatabase;
    let pgProxy: LatencyProxy;

    before(async () => {
      db = await freshDatabase("latency-proxy");
      pgProxy = await startLatencyProxy({ targetHost: db.cluster.host, targetPort: db.cluster.port, delayMs: DELAY });
    });
    after(async () => {
      await pgProxy?.close();
      await db?.drop();
    });

    it("carries a real query, each round trip paying the delay both ways", async () => {
      const url = new URL(db.url);
      url.port = String(pgProxy.port);
      const client = new Client({ connectionString: url.toString() });
      await client.connect();
      try {
        const timings: number[] = [];
        for (let i = 0; i < 3; i++) {
          const started = performance.now();
          const { rows } = await client.query<{ n: number; who: string }>(
            "select $1::int * 2 as n, current_user as who",
            [21 + i],
          );
          timings.push(performance.now() - started);
          assert.deepEqual(rows, [{ n: (21 + i) * 2, who: "postgres" }]);
        }
        for (const ms of timings) assert.ok(ms >= 2 * DELAY - 1, `a query took only ${ms.toFixed(1)} ms`);
      } finally {
        await client.end();
      }
    });
  });
});
