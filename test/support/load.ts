/**
 * `STAGE2_TEST_LOAD=busy npm run test:<layer>` runs the layer while other processes keep every CPU busy, the way
 * another job on a shared CI machine does (mocha root hooks, registered in .mocharc.json). The suite must pass
 * that way: no test may depend on how fast the machine is.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as os from "node:os";

const hogs: ChildProcess[] = [];

export const mochaHooks = {
  beforeAll(): void {
    if (process.env.STAGE2_TEST_LOAD !== "busy" || hogs.length) return;
    for (let i = 0; i < os.availableParallelism(); i++) {
      hogs.push(spawn("sh", ["-c", "while :; do :; done"], { stdio: "ignore" }));
    }
    console.log(`[load] ${hogs.length} busy processes keep every CPU busy while this layer runs`);
  },
  afterAll(): void {
    for (const hog of hogs.splice(0)) hog.kill("SIGKILL");
  },
};

// A run that dies early must not leave the load running.
process.on("exit", () => hogs.forEach((hog) => hog.kill("SIGKILL")));
