package app

import "testing"

// SE-10: dev mode is the all-in-one runner's alone; no environment
// variable turns it on for a service binary.
func TestDevModeNotFromEnvironment_SE10(t *testing.T) {
	for _, name := range []string{"DEV_MODE", "DevMode", "DEVMODE", "CERTLIFE_DEV_MODE"} {
		t.Setenv(name, "true")
	}
	c, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.DevMode {
		t.Fatal("DevMode was read from the environment")
	}
}
