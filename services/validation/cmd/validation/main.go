// Command validation runs the validation service as its own process.
package main

import (
	"github.com/certlife/platform/pkg/app"

	"github.com/certlife/platform/services/validation"
)

func main() { app.Main(validation.Definition) }
