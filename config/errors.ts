import { RunError } from "@pulumi/pulumi/errors";

/**
 * An answer for the operator, not a crash: a RunError, so the engine prints the message alone and ends the
 * run cleanly. The stack is dropped too: formatting it costs Node 20's util.inspect up to a minute and a
 * half (it loops on the source-mapped frame ".../node_modules/@pulumi/resource.ts:..." until "Invalid string
 * length"), and it would say nothing the message does not.
 */
export class OperatorError extends RunError {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
    this.stack = `${name}: ${message}`;
  }
}
