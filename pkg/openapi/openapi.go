// Package openapi holds the OpenAPI 3.1 document of the whole public API
// (SPEC §5), kept by hand beside the code in openapi.json and served at
// GET /v1/openapi.json. Tests check it against the routes the all-in-one
// router registers, so a route added without documentation fails CI.
package openapi

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"time"
)

//go:embed openapi.json
var document []byte

// etag lets clients and proxies revalidate instead of downloading again.
var etag = func() string {
	sum := sha256.Sum256(document)
	return `"` + hex.EncodeToString(sum[:8]) + `"`
}()

// Document returns a copy of the document's JSON.
func Document() []byte { return bytes.Clone(document) }

// Handler serves the document as application/json (GET and HEAD;
// If-None-Match answers 304).
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", etag)
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "openapi.json", time.Time{}, bytes.NewReader(document))
	})
}
