package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// defaultServer is the all-in-one's default HTTP_ADDR.
const defaultServer = "http://127.0.0.1:8080"

// fileConfig is ~/.config/certctl/config.json (or $CERTCTL_CONFIG).
type fileConfig struct {
	Server string `json:"server"`
	Token  string `json:"token"`
}

// configPath is $CERTCTL_CONFIG, else certctl/config.json under the user's
// configuration directory ($XDG_CONFIG_HOME or ~/.config).
func configPath(getenv func(string) string) string {
	if p := getenv("CERTCTL_CONFIG"); p != "" {
		return p
	}
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			var err error
			if home, err = os.UserHomeDir(); err != nil {
				return ""
			}
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "certctl", "config.json")
}

// loadConfig reads the config file when it exists. A file that anyone
// but its owner can read or write is refused: it holds a bearer token.
func loadConfig(path string) (fileConfig, error) {
	var c fileConfig
	if path == "" {
		return c, nil
	}
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fail(exitAuth, "config file: %v", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return c, fail(exitAuth, "config file %s has mode %04o: it holds a token, so only its owner may read it (chmod 600 %s)",
			path, st.Mode().Perm(), path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return c, fail(exitAuth, "config file: %v", err)
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, fail(exitUsage, "config file %s: %v", path, err)
	}
	c.Token, c.Server = strings.TrimSpace(c.Token), strings.TrimSpace(c.Server)
	return c, nil
}
