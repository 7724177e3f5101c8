import * as path from "node:path";

/** The project folder: where relative paths of the configuration (seed and tenants files, sslrootcert) are read from. */
export const PROJECT_ROOT = path.join(__dirname, "..");
