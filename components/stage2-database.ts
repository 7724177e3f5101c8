/**
 * The Stage 2 schema: the private schema, 13 tables (each with its grants, indexes, policies and the guard
 * against hand-added policies), and the helper `private.using_rls_for_project()` that every project policy
 * calls. Dependencies follow the SQL: referenced tables first, the helper after the tables it reads, the
 * policies after the helper.
 */
import * as pulumi from "@pulumi/pulumi";
import { DatabaseObject } from "./resource";
import { policySetResource, type TableSpec } from "../database/specs";
import type { Stage2Model } from "../model";
import type { ReviewerModel } from "../model/reviewer";

export interface Stage2DatabaseArgs {
  readonly model: Pick<
    Stage2Model,
    "privateSchema" | "privateSchemaGrants" | "tables" | "helper" | "helperGrants" | "reviewer"
  >;
  /** Protect tables from deletion by the engine (default on for prod stacks). */
  readonly protectTables: boolean;
}

type TableModel = Stage2Model["tables"][number];

export class Stage2Table extends pulumi.ComponentResource {
  readonly table: DatabaseObject<TableSpec>;
  /** Everything a dependent object may need to wait for (table, grants, indexes). */
  readonly ready: pulumi.Resource[];
  private readonly policyResources: DatabaseObject<object>[] = [];

  constructor(
    private readonly name: string,
    private readonly args: {
      model: TableModel;
      protect: boolean;
      dependsOn: pulumi.Resource[];
      /** The roles its grants and policies name, besides the platform's (the reviewer). */
      roles: pulumi.Resource[];
    },
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("stage2:database:Table", name, {}, opts);
    const { model } = args;
    this.table = new DatabaseObject<TableSpec>("Table", name, model.spec, {
      parent: this,
      dependsOn: args.dependsOn,
      protect: args.protect,
    });
    const grants = new DatabaseObject("Grants", `${name}/grants`, model.grants, {
      parent: this,
      dependsOn: [this.table, ...args.roles],
    });
    const indexes = model.indexes.map(
      (index) => new DatabaseObject("Index", `${name}/${index.name}`, index, { parent: this, dependsOn: [this.table] }),
    );
    this.ready = [this.table, grants, ...indexes];
    this.registerOutputs({});
  }

  /** Policies call the helper and read other tables, so they are added once those exist. */
  addPolicies(dependsOn: pulumi.Resource[]): pulumi.Resource[] {
    const name = this.name;
    for (const policy of this.args.model.policies) {
      this.policyResources.push(
        new DatabaseObject("Policy", `${name}/${policy.name}`, policy, {
          parent: this,
          dependsOn: [this.table, ...this.args.roles, ...dependsOn],
        }),
      );
    }
    const set = new DatabaseObject("PolicySet", `${name}/policies`, policySetResource(this.args.model.policySet), {
      parent: this,
      dependsOn: this.policyResources,
    });
    return [...this.policyResources, set];
  }
}

export class Stage2Database extends pulumi.ComponentResource {
  /** Keyed by schema-qualified name (public.projects). */
  readonly tables: Readonly<Record<string, Stage2Table>>;
  /** Every resource of the schema, for whatever must wait for all of it (storage policies, the report). */
  readonly resources: pulumi.Resource[];
  readonly helper: DatabaseObject<object>;

  constructor(name: string, args: Stage2DatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stage2:database:Stage2Database", name, {}, opts);
    const { model } = args;
    // The reviewer comes first: grants and policies name it.
    const reviewer = model.reviewer
      ? new DatabaseObject("Role", model.reviewer.role.name, model.reviewer.role, { parent: this })
      : undefined;
    const roles = reviewer ? [reviewer] : [];
    const schema = new DatabaseObject("Schema", model.privateSchema.name, model.privateSchema, { parent: this });
    const schemaGrants = new DatabaseObject("Grants", `${model.privateSchema.name}/grants`, model.privateSchemaGrants, {
      parent: this,
      dependsOn: [schema, ...roles],
    });

    // Keyed by schema.name; referenced tables come earlier in the model (auth.users is the platform's).
    const tables: Record<string, Stage2Table> = {};
    for (const t of model.tables) {
      const qualifiedName = `${t.spec.schema}.${t.spec.name}`;
      const referenced = Object.values(t.spec.foreignKeys)
        .map((fk) => tables[fk.references])
        .filter((r): r is Stage2Table => r !== undefined);
      tables[qualifiedName] = new Stage2Table(
        qualifiedName,
        {
          model: t,
          protect: args.protectTables,
          dependsOn: referenced.map((r) => r.table),
          roles,
        },
        { parent: this },
      );
    }
    const allTables = Object.values(tables).flatMap((t) => t.ready);

    this.helper = new DatabaseObject("Function", `${model.helper.schema}.${model.helper.name}`, model.helper, {
      parent: this,
      dependsOn: [schema, ...allTables],
    });
    const helperGrants = new DatabaseObject(
      "Grants",
      `${model.helper.schema}.${model.helper.name}/grants`,
      model.helperGrants,
      {
        parent: this,
        dependsOn: [this.helper],
      },
    );
    const policies = Object.values(tables).flatMap((t) => t.addPolicies([this.helper, ...allTables]));
    const reviewerReads = reviewer ? this.reviewerReads(model.reviewer!, reviewer, schema) : [];

    this.tables = tables;
    this.resources = [schema, schemaGrants, ...allTables, this.helper, helperGrants, ...policies, ...reviewerReads];
    this.registerOutputs({});
  }

  /** USAGE on schema public, and storage.buckets through private.stage2_buckets() (model/reviewer.ts). */
  private reviewerReads(model: ReviewerModel, role: pulumi.Resource, schema: pulumi.Resource): pulumi.Resource[] {
    const publicUsage = new DatabaseObject("Grants", `${model.role.name}/public-usage`, model.schemaGrants, {
      parent: this,
      dependsOn: [role],
    });
    const reader = model.bucketReader;
    const bucketReader = new DatabaseObject("Function", `${reader.schema}.${reader.name}`, reader, {
      parent: this,
      dependsOn: [schema],
    });
    const readerGrants = new DatabaseObject(
      "Grants",
      `${reader.schema}.${reader.name}/grants`,
      model.bucketReaderGrants,
      {
        parent: this,
        dependsOn: [bucketReader, role],
      },
    );
    return [role, publicUsage, bucketReader, readerGrants];
  }
}
