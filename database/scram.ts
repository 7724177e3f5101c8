/**
 * A SCRAM-SHA-256 password verifier, computed here so that the password itself never reaches the server: a
 * `CREATE ROLE ... PASSWORD '<verifier>'` in a server log or pg_stat_statements shows what PostgreSQL stores
 * anyway, not the password (as psql's \password does). Format and derivation: RFC 5802 / RFC 7677, as
 * PostgreSQL stores it (src/common/scram-common.c): SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";

/** PostgreSQL's default (scram_iterations, 4096 since PostgreSQL 10). */
export const SCRAM_ITERATIONS = 4096;

/**
 * `password` must be printable ASCII (config/schema.ts refuses anything else), where SASLprep, which
 * PostgreSQL applies first, changes nothing.
 */
export function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations = SCRAM_ITERATIONS): string {
  const salted = pbkdf2Sync(Buffer.from(password, "utf8"), salt, iterations, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const serverKey = createHmac("sha256", salted).update("Server Key").digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}
