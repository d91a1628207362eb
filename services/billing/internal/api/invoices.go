package api

// Invoices and payments at the edge (BI-2, BI-3, BI-4, SV-3): the price
// list, the customer's invoice as JSON or PDF, the payment processor's
// webhook, bank statements and the operators' list of payments that wait
// for them.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/invoicepdf"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/pkg/session"
	"github.com/certlife/platform/services/billing/internal/domain"
	"github.com/certlife/platform/services/billing/internal/store"
)

// Body bounds (SE-4).
const (
	maxPricesBody    = 64 << 10
	maxWebhookBody   = 64 << 10
	maxStatement     = 5 << 20
	maxResolveBody   = 8 << 10
	webhookSigHeader = "Webhook-Signature"
)

// Customers verifies customer sessions for the invoice routes.
type Customers struct {
	Sessions *session.Verifier
	Clock    clock.Clock
}

type customerKey struct{}

// Customer lets through a request with a valid customer session token
// (pkg/session, intake's key; Claims.Customer, Subject = the customer).
// An applicant's session has no invoices: their invoice answers 404 like
// another customer's.
func (a *API) Customer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		tok = strings.TrimSpace(tok)
		if !ok || tok == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="customer"`)
			httpx.WriteError(w, r, a.Log, errs.Unauthorized("a session bearer token is required"))
			return
		}
		claims, err := a.Customers.Sessions.Verify(tok, a.Customers.Clock.Now())
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="customer", error="invalid_token"`)
			httpx.WriteError(w, r, a.Log, errs.Unauthorized("the session is unknown or has expired"))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), customerKey{}, claims)))
	})
}

// PricesBody is the price list, as PUT and GET carry it.
type PricesBody struct {
	Prices []domain.Price `json:"prices"`
}

// PutPrices handles PUT /ops/v1/prices (role billing): the whole list is
// replaced; waiting invoices it now prices are issued.
func (a *API) PutPrices(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Prices *[]domain.Price `json:"prices"`
	}
	if p := httpx.DecodeJSON(w, r, &body, maxPricesBody); p != nil {
		httpx.WriteProblem(w, r, p)
		return
	}
	if body.Prices == nil {
		httpx.WriteError(w, r, a.Log, errs.InvalidField("prices", "required (an empty list removes every price)"))
		return
	}
	res, err := a.App.PutPrices(r.Context(), opsauth.Actor(r.Context()), *body.Prices)
	if err != nil {
		httpx.WriteError(w, r, a.Log, err)
		return
	}
	prices := res.Prices
	if prices == nil {
		prices = []domain.Price{}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"prices": prices, "invoices_issued": res.Issued})
}

// GetPrices handles GET /ops/v1/prices.
func (a *API) GetPrices(w http.ResponseWriter, r *http.Request) {
	prices, err := a.App.Prices(r.Context())
	if err != nil {
		httpx.WriteError(w, r, a.Log, err)
		return
	}
	if prices == nil {
		prices = []domain.Price{}
	}
	httpx.WriteJSON(w, http.StatusOK, PricesBody{Prices: prices})
}

// WaitingInvoice is an order whose invoice waits for a price.
type WaitingInvoice struct {
	ID         uuid.UUID `json:"id"`
	OrderID    string    `json:"order_id"`
	CustomerID string    `json:"customer_id"`
	Status     string    `json:"status"`
	Product    string    `json:"product"`
	TermMonths int       `json:"term_months"`
	CreatedAt  time.Time `json:"created_at"`
}

// OpsInvoices handles GET /ops/v1/invoices?status=awaiting_price: the
// orders whose invoice waits for the price list (BI-4).
func (a *API) OpsInvoices(w http.ResponseWriter, r *http.Request) {
	if s := r.URL.Query().Get("status"); s != "" && s != domain.InvoiceAwaitingPrice {
		httpx.WriteError(w, r, a.Log, errs.InvalidField("status", "awaiting_price"))
		return
	}
	list, err := a.App.AwaitingPrice(r.Context())
	if err != nil {
		httpx.WriteError(w, r, a.Log, err)
		return
	}
	out := make([]WaitingInvoice, 0, len(list))
	for _, inv := range list {
		out = append(out, WaitingInvoice{ID: inv.ID, OrderID: inv.OrderID, CustomerID: inv.CustomerID, Status: inv.Status,
			Product: inv.Product, TermMonths: inv.TermMonths, CreatedAt: inv.CreatedAt})
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"invoices": out})
}

// InvoiceJSON is the customer's view of an invoice.
type InvoiceJSON struct {
	ID                 string               `json:"id"`
	Number             string               `json:"number"`
	Status             string               `json:"status"`
	OrderID            string               `json:"order_id"`
	PaymentReference   string               `json:"payment_reference"`
	Currency           string               `json:"currency"`
	Lines              []events.InvoiceLine `json:"lines"`
	Taxes              []events.TaxSummary  `json:"taxes"`
	Subtotal           int64                `json:"subtotal"`
	Tax                int64                `json:"tax"`
	Total              int64                `json:"total"`
	RegistrationNumber string               `json:"registration_number"`
	IssuerName         string               `json:"issuer_name"`
	BankAccount        string               `json:"bank_account,omitempty"`
	OrganizationName   string               `json:"organization_name,omitempty"`
	IssuedAt           time.Time            `json:"issued_at"`
	DueAt              time.Time            `json:"due_at"`
	PaidAt             *time.Time           `json:"paid_at,omitempty"`
	PaymentMethod      string               `json:"payment_method,omitempty"`
}

// Invoice handles GET /v1/invoices/{id} (JSON, or the PDF with Accept:
// application/pdf) and GET /v1/invoices/{id}.pdf, for the customer's
// session. The PDF's language is ?lang=ja|en, else the customer's.
func (a *API) Invoice(pdf bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		claims, _ := r.Context().Value(customerKey{}).(session.Claims)
		id, err := uuid.Parse(chi.URLParam(r, "id"))
		if err != nil || !claims.Customer {
			httpx.WriteError(w, r, a.Log, errs.NotFound("no such invoice"))
			return
		}
		lang := r.URL.Query().Get("lang")
		if lang != "" && lang != "ja" && lang != "en" {
			httpx.WriteError(w, r, a.Log, errs.InvalidField("lang", "ja or en"))
			return
		}
		inv, err := a.App.Invoice(r.Context(), claims.Subject, id)
		if err != nil {
			httpx.WriteError(w, r, a.Log, err)
			return
		}
		if pdf || wantsPDF(r.Header.Get("Accept")) {
			if lang == "" {
				lang = inv.Recipient.Language
			}
			doc, err := invoicepdf.Render(inv.InvoiceIssued, lang)
			if err != nil {
				httpx.WriteError(w, r, a.Log, err)
				return
			}
			w.Header().Set("Content-Type", "application/pdf")
			w.Header().Set("Content-Disposition", `inline; filename="`+inv.Number+`.pdf"`)
			w.Header().Set("Content-Length", strconv.Itoa(len(doc)))
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(doc)
			return
		}
		iss := inv.InvoiceIssued
		httpx.WriteJSON(w, http.StatusOK, InvoiceJSON{ID: iss.InvoiceID, Number: iss.Number, Status: inv.Status, OrderID: iss.OrderID,
			PaymentReference: iss.PaymentReference, Currency: iss.Currency, Lines: iss.Lines, Taxes: iss.Taxes,
			Subtotal: iss.Subtotal, Tax: iss.Tax, Total: iss.Total, RegistrationNumber: iss.RegistrationNumber,
			IssuerName: iss.IssuerName, BankAccount: iss.BankAccount, OrganizationName: iss.OrganizationName,
			IssuedAt: iss.IssuedAt, DueAt: iss.DueAt, PaidAt: inv.PaidAt, PaymentMethod: inv.PaidMethod})
	}
}

// wantsPDF: the Accept header prefers application/pdf to JSON.
func wantsPDF(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt := strings.TrimSpace(strings.SplitN(part, ";", 2)[0])
		switch strings.ToLower(mt) {
		case "application/pdf":
			return true
		case "application/json", "application/*", "*/*":
			return false
		}
	}
	return false
}

// Webhook handles POST /v1/webhooks/payments (BI-2): the signature over
// the raw body is checked first (401 when missing, wrong or more than 5
// minutes from now); then the event is applied once: a repeated event ID
// answers 200 and does nothing.
func (a *API) Webhook(w http.ResponseWriter, r *http.Request) {
	if !httpx.MediaTypeIs(r.Header.Get("Content-Type"), "application/json") {
		httpx.WriteError(w, r, a.Log, errs.Unsupported("send application/json"))
		return
	}
	raw, p := httpx.ReadBody(w, r, maxWebhookBody)
	if p != nil {
		httpx.WriteProblem(w, r, p)
		return
	}
	if err := a.App.VerifyWebhook(r.Header.Get(webhookSigHeader), raw); err != nil {
		a.App.Metrics.Webhooks.WithLabelValues("unauthorized").Inc()
		httpx.WriteError(w, r, a.Log, err)
		return
	}
	var e domain.WebhookEvent
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		httpx.WriteError(w, r, a.Log, &errs.Error{Kind: errs.KindInvalid, Detail: "the event is not the expected JSON: " + err.Error()})
		return
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		httpx.WriteError(w, r, a.Log, errs.Malformed("the body must hold exactly one JSON object"))
		return
	}
	outcome, err := a.App.Webhook(r.Context(), e)
	if err != nil {
		httpx.WriteError(w, r, a.Log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"id": e.ID, "outcome": outcome})
}

// UploadStatement handles POST /ops/v1/bank-statements (role billing): a
// text/csv statement date,payer_name,amount,reference in UTF-8 or
// Shift_JIS, at most 5 MiB (BI-3). A file with any bad line is a 422 and
// applies nothing.
func (a *API) UploadStatement(w http.ResponseWriter, r *http.Request) {
	raw, p := httpx.ReadBody(w, r, maxStatement)
	if p != nil {
		httpx.WriteProblem(w, r, p)
		return
	}
	res, err := a.App.UploadStatement(r.Context(), opsauth.Actor(r.Context()), raw)
	if err != nil {
		httpx.WriteError(w, r, a.Log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, res)
}

// Exceptions handles GET /ops/v1/payment-exceptions[?all=true]: payments
// that wait for an operator (BI-2, BI-3), open ones unless all.
func (a *API) Exceptions(w http.ResponseWriter, r *http.Request) {
	all := r.URL.Query().Get("all") == "true"
	list, err := a.App.Exceptions(r.Context(), all)
	if err != nil {
		httpx.WriteError(w, r, a.Log, err)
		return
	}
	if list == nil {
		list = []store.Exception{}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"exceptions": list})
}

// Resolve handles POST /ops/v1/payment-exceptions/{id}/resolution
// {resolution: "apply"|"dismiss", note}.
func (a *API) Resolve(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		httpx.WriteError(w, r, a.Log, errs.NotFound("no such payment exception"))
		return
	}
	var body struct {
		Resolution string `json:"resolution"`
		Note       string `json:"note"`
	}
	if p := httpx.DecodeJSON(w, r, &body, maxResolveBody); p != nil {
		httpx.WriteProblem(w, r, p)
		return
	}
	e, err := a.App.ResolveException(r.Context(), opsauth.Actor(r.Context()), id, body.Resolution, body.Note)
	if err != nil {
		httpx.WriteError(w, r, a.Log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, e)
}
