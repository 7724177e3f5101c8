export { Stage2Database, Stage2Table } from "./stage2-database";
export { AttachmentsStorage } from "./attachments-storage";
export { PartnerSeeds } from "./partner-seeds";
export { TenantFeatures } from "./tenant-features";
export { VerificationReport } from "./verification-report";
