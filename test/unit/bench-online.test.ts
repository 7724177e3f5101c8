import { strict as assert } from "node:assert";
import { pickKind, REQUEST_MIX, requestMix, SIGN_IN, SIGN_IN_WEIGHT } from "../../bench/online/load";

describe("online benchmark: sign-ins and waits on auth tables (bench/online)", () => {
  it("adds sign-ins to the mix only with an auth connection, at their weight", () => {
    assert.equal(requestMix(false), REQUEST_MIX);
    const mix = requestMix(true);
    assert.deepEqual(mix.slice(0, REQUEST_MIX.length), REQUEST_MIX);
    assert.deepEqual(mix[mix.length - 1], [SIGN_IN, SIGN_IN_WEIGHT]);
    assert.equal(
      mix.reduce((n, [, w]) => n + w, 0),
      110,
    );
    // The last 10/110 of the draws are sign-ins; without them, no draw is.
    assert.equal(pickKind(0.95, mix), SIGN_IN);
    assert.equal(pickKind(0.9, mix), "delete-attachment");
    assert.equal(pickKind(0.999, REQUEST_MIX), "delete-attachment");
  });
});
