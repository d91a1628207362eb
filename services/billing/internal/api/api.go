// Package api is billing's HTTP edge: the ops coupon import (BI-1).
package api

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"sort"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/services/billing/internal/coupon"
	"github.com/certlife/platform/services/billing/internal/metrics"
	"github.com/certlife/platform/services/billing/internal/store"
)

// MaxImport bounds a coupon file (about 130,000 lines).
const MaxImport = 5 << 20

// API serves billing's routes.
type API struct {
	Pool    *pgxpool.Pool
	Clock   clock.Clock
	Log     *slog.Logger
	Metrics *metrics.Metrics
}

// ImportResult is the answer to a coupon import.
type ImportResult struct {
	BatchID  uuid.UUID          `json:"batch_id"`
	Imported int                `json:"imported"`
	Rejected []coupon.Rejection `json:"rejected"`
}

// ImportCoupons handles POST /ops/v1/coupons: a text/csv file with the
// header number,product,expires_at. Good lines are imported in one
// transaction under a new batch ID; bad lines are listed with their
// line number and reason (BI-1).
//
// expires_at is an RFC 3339 timestamp, or a date YYYY-MM-DD meaning the
// coupon is usable until the end of that day in Japan (stored as the next
// midnight JST, an exclusive bound). An expiry not after now (the injected
// clock) rejects the line. A body over 5 MiB is a 413, a type other than
// text/csv a 415, an empty or unreadable file a 400, a missing or wrong
// header (or no coupon lines) a 422 — and then nothing is stored.
func (a *API) ImportCoupons(w http.ResponseWriter, r *http.Request) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "text/csv" {
		httpx.WriteProblem(w, r, httpx.NewProblem(http.StatusUnsupportedMediaType, "unsupported-media-type",
			"Unsupported media type", "send text/csv with the header number,product,expires_at"))
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxImport))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httpx.WriteProblem(w, r, httpx.NewProblem(http.StatusRequestEntityTooLarge, "body-too-large",
				"Request body too large", "at most 5 MiB"))
			return
		}
		httpx.WriteProblem(w, r, httpx.BadRequest("the body could not be read"))
		return
	}
	now := a.Clock.Now()
	parsed, err := coupon.ParseCSV(bytes.NewReader(raw), now)
	if err != nil {
		httpx.WriteProblem(w, r, fileProblem(err))
		return
	}
	batch := store.Batch{ImportedBy: opsauth.Actor(r.Context()), ImportedAt: now, Lines: parsed.Lines}
	if batch.ID, err = uuid.NewV7(); err != nil {
		httpx.WriteError(w, r, a.Log, err)
		return
	}
	rejected := parsed.Rejected
	err = db.InTx(r.Context(), a.Pool, func(tx pgx.Tx) error {
		existing, err := store.ImportBatch(r.Context(), tx, batch)
		if err != nil {
			return err
		}
		for _, line := range existing {
			rejected = append(rejected, coupon.Rejection{Line: line, Error: "coupon already exists"})
		}
		return store.FinishBatch(r.Context(), tx, batch.ID, len(parsed.Lines)-len(existing), len(rejected))
	})
	if err != nil {
		httpx.WriteError(w, r, a.Log, err)
		return
	}
	sort.Slice(rejected, func(i, j int) bool { return rejected[i].Line < rejected[j].Line })
	if rejected == nil {
		rejected = []coupon.Rejection{}
	}
	imported := len(parsed.Lines) - (len(rejected) - len(parsed.Rejected))
	a.Metrics.Imported.Add(float64(imported))
	a.Metrics.ImportRejected.Add(float64(len(rejected)))
	a.Log.Info("coupons imported", "batch", batch.ID, "by", batch.ImportedBy, "imported", imported, "rejected", len(rejected))
	httpx.WriteJSON(w, http.StatusOK, ImportResult{BatchID: batch.ID, Imported: imported, Rejected: rejected})
}

func fileProblem(err error) *httpx.Problem {
	var fe *coupon.FileError
	if !errors.As(err, &fe) {
		return httpx.BadRequest(err.Error())
	}
	switch fe.Kind {
	case coupon.FileBadHeader:
		return httpx.Invalid(httpx.FieldError{Field: "header", Message: fe.Message})
	case coupon.FileNoLines:
		return httpx.Invalid(httpx.FieldError{Field: "lines", Message: fe.Message})
	default:
		return httpx.BadRequest(fe.Message)
	}
}
