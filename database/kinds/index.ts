/**
 * Every kind of database object the model declares, by the name its resources carry
 * (`pulumi-nodejs:dynamic/stage2:<Kind>`). The provider adds the report (report/kind.ts), which owns nothing in the
 * database; the report reads the others through this table (database/compare.ts).
 */
import { buckets, featureRows, rows } from "./data";
import { indexes } from "./indexes";
import { policies, policySets } from "./policies";
import { functions, grants, schemas } from "./routines";
import { roles } from "./roles";
import { tables } from "./tables";

export const DATABASE_KINDS = {
  Schema: schemas,
  Role: roles,
  Table: tables,
  Index: indexes,
  Function: functions,
  Grants: grants,
  Policy: policies,
  PolicySet: policySets,
  Bucket: buckets,
  SeedRow: rows,
  FeatureRows: featureRows,
} as const;

export type DatabaseKindName = keyof typeof DATABASE_KINDS;
