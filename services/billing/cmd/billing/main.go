// Command billing runs the billing service as its own process.
package main

import (
	"github.com/certlife/platform/pkg/app"

	"github.com/certlife/platform/services/billing"
)

func main() { app.Main(billing.Definition) }
