package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// PDFText extracts a PDF's text, laid out, with poppler's pdftotext;
// under CI a missing tool fails the test (.ci/run installs poppler-utils).
func PDFText(t testing.TB, pdf []byte) string {
	t.Helper()
	bin := RequireTool(t, "pdftotext")
	path := filepath.Join(t.TempDir(), "document.pdf")
	if err := os.WriteFile(path, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-layout", "-enc", "UTF-8", path, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v: %s", err, out)
	}
	return string(out)
}
