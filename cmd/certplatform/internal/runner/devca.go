package runner

import (
	"log/slog"
	"path/filepath"
	"time"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/services/issuer"
)

// DevCA points CA_DIR at $DATA_DIR/ca when it is unset and creates a dev
// CA hierarchy there when the directory holds none (every purpose's
// issuing CA, the data key). It runs once before any issuer starts
// (all-in-one and split mode alike), so that issuer replicas share one CA.
// now is the platform clock's time; cfg.PublicURL must be set.
func DevCA(cfg *app.Config, now time.Time, log *slog.Logger) error {
	if cfg.CADir == "" {
		cfg.CADir = filepath.Join(cfg.DataDir, "ca")
	}
	return issuer.PrepareDevCA(cfg.CADir, cfg.PublicURL, cfg.CAKeyAlgorithm, now, log)
}
