package testenv

import (
	"bytes"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ReadMailDir reads the .eml files the all-in-one's mail sink wrote to dir
// (split mode's mail sink process writes the same), oldest first. To is
// the envelope recipients the sink recorded (X-Envelope-To). It takes no
// testing.TB, so that a test's client goroutines can poll it.
func ReadMailDir(dir string) ([]Mail, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names) // the sink names files by time, then sequence
	var out []Mail
	for _, name := range names {
		raw, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		msg, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		m := Mail{Raw: raw, Msg: msg, Body: decodeBody(msg)}
		m.From = strings.Trim(msg.Header.Get("Return-Path"), "<>")
		for _, to := range msg.Header["X-Envelope-To"] {
			m.To = append(m.To, strings.Trim(to, "<>"))
		}
		out = append(out, m)
	}
	return out, nil
}
