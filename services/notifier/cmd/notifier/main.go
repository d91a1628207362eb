// Command notifier runs the notifier service alone.
package main

import (
	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/services/notifier"
)

func main() { app.Main(notifier.Definition) }
