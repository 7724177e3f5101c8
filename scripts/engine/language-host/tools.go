//go:build tools

// Keeps the language host's package (and so its dependencies) in go.mod and go.sum.
package tools

import _ "github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs"
