// Command intake runs the intake service on its own.
package main

import (
	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/services/intake"
)

func main() { app.Main(intake.Definition) }
