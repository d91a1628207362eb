package issuer

import (
	"log/slog"
	"time"

	"github.com/certlife/platform/services/issuer/internal/ca"
)

// EnsureDevCA makes sure dir holds a CA: when it holds none, a dev
// hierarchy is created (IS-1); a CA already there is only checked. The
// all-in-one and split mode call it once before any issuer starts, so that
// several issuer replicas load the same CA instead of racing to create one.
func EnsureDevCA(dir string, now time.Time, log *slog.Logger) error {
	_, err := ca.Open(dir, now, log)
	return err
}
