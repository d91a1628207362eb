// Command issuer runs the issuer service alone.
package main

import (
	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/services/issuer"
)

func main() { app.Main(issuer.Definition) }
