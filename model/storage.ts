/**
 * The private bucket `attachments` and exactly three policies on storage.objects.
 *
 * Path convention: an object is named `<project_id>/<file>`. Access to an object follows its
 * attachments_meta row: the row must exist for the same bucket and name (its check constraint pins the
 * name under the row's project), and the caller must pass the project helper for that project. So a
 * client first records the attachment (RLS on attachments_meta), then uploads the file.
 */
import type { BucketSpec, PolicySetSpec, PolicySpec } from "../database/specs";
import { literal } from "../database/sql";
import { policy } from "./define";
import { mayActOn } from "./stage2";

export const ATTACHMENTS_BUCKET = "attachments";
export const STORAGE_POLICY_PREFIX = "attachments_";

export interface BucketSettings {
  readonly fileSizeLimit: number | null;
  readonly allowedMimeTypes: readonly string[] | null;
}

export function attachmentsBucket(settings: BucketSettings): BucketSpec {
  return {
    bucketId: ATTACHMENTS_BUCKET,
    name: ATTACHMENTS_BUCKET,
    public: false,
    fileSizeLimit: settings.fileSizeLimit,
    allowedMimeTypes: settings.allowedMimeTypes ? [...settings.allowedMimeTypes].sort() : null,
  };
}

const OBJECT_IS_A_RECORDED_ATTACHMENT_OF_A_PROJECT_THE_CALLER_MAY_ACT_ON = `bucket_id = ${literal(ATTACHMENTS_BUCKET)}
  and exists (
    select 1
    from public.attachments_meta m
    where m.bucket_id = objects.bucket_id
      and m.object_name = objects.name
      and ${mayActOn("m.project_id")}
  )`;

export const STORAGE_POLICIES: readonly PolicySpec[] = [
  policy("storage", "objects", "attachments_read", "select", {
    using: OBJECT_IS_A_RECORDED_ATTACHMENT_OF_A_PROJECT_THE_CALLER_MAY_ACT_ON,
  }),
  policy("storage", "objects", "attachments_insert", "insert", {
    withCheck: OBJECT_IS_A_RECORDED_ATTACHMENT_OF_A_PROJECT_THE_CALLER_MAY_ACT_ON,
  }),
  policy("storage", "objects", "attachments_delete", "delete", {
    using: OBJECT_IS_A_RECORDED_ATTACHMENT_OF_A_PROJECT_THE_CALLER_MAY_ACT_ON,
  }),
];

/** Exactly these three `attachments_*` policies; a fourth added by hand is drift. */
export const STORAGE_POLICY_SET: PolicySetSpec = {
  schema: "storage",
  table: "objects",
  prefix: STORAGE_POLICY_PREFIX,
  names: STORAGE_POLICIES.map((p) => p.name).sort(),
};
