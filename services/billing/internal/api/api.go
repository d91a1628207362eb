// Package api is billing's HTTP edge: the ops coupon import (BI-1). It
// decodes, calls a use case and encodes; errors become RFC 9457 problems
// here and only here (httpx.WriteError).
package api

import (
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/services/billing/internal/app"
)

// MaxImport bounds a coupon file (about 130,000 lines).
const MaxImport = 5 << 20

// API serves billing's routes.
type API struct {
	App       *app.App
	Log       *slog.Logger
	Customers Customers
}

// ImportResult is the answer to a coupon import.
type ImportResult struct {
	BatchID  uuid.UUID   `json:"batch_id"`
	Imported int         `json:"imported"`
	Rejected []Rejection `json:"rejected"`
}

// Rejection is a line of the file that was not imported, and why.
type Rejection struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
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
		httpx.WriteError(w, r, a.Log, errs.Unsupported("send text/csv with the header number,product,expires_at"))
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxImport))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httpx.WriteError(w, r, a.Log, &errs.Error{Kind: errs.KindTooLarge, Detail: "at most 5 MiB"})
			return
		}
		httpx.WriteError(w, r, a.Log, errs.Malformed("the body could not be read"))
		return
	}
	res, err := a.App.ImportCoupons(r.Context(), opsauth.Actor(r.Context()), raw)
	if err != nil {
		httpx.WriteError(w, r, a.Log, err)
		return
	}
	out := ImportResult{BatchID: res.BatchID, Imported: res.Imported, Rejected: make([]Rejection, 0, len(res.Rejected))}
	for _, rj := range res.Rejected {
		out.Rejected = append(out.Rejected, Rejection{Line: rj.Line, Error: rj.Error})
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}
