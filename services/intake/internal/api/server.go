package api

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"html/template"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/services/intake/internal/app"
	"github.com/certlife/platform/services/intake/internal/domain"
)

// serverRoutes are the server-order routes (SPEC §5 "Server orders").
func (a *API) serverRoutes(r chi.Router) {
	r.Get("/v1/orders", a.orders)
	r.Get("/v1/orders/{id}", a.order)
	r.With(a.Idempotent).Post("/v1/certificates/{id}/renewal-intent", a.renewalIntent)
	// The one-click links of the notice mail (SV-2): GET shows what the
	// link will do (mail scanners fetch links), POST records it.
	r.Get("/v1/renewal-intents", a.intentPage)
	r.Post("/v1/renewal-intents", a.intentLink)
	// Not idempotent by key: the body holds the password.
	r.Post("/v1/customers/password", a.setPassword)
	r.Group(func(r chi.Router) {
		r.Use(a.Ops.Require(opsauth.Billing))
		r.With(a.Idempotent).Post("/ops/v1/certificates/import", a.importCertificate)
	})
}

// submitServer handles POST /v1/applications with product "server".
func (a *API) submitServer(w http.ResponseWriter, r *http.Request, body domain.NewApplication) {
	var who *domain.Principal
	if tok, ok := bearer(r); ok {
		p, err := a.App.SessionPrincipal(r.Context(), tok)
		if err == nil {
			err = p.RequireCustomer()
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		who = &p
	}
	v, bad := body.ValidateServer(who != nil)
	if err := bad.Err(); err != nil {
		a.fail(w, r, err)
		return
	}
	acc, err := a.App.SubmitServer(r.Context(), v, who, a.clientKey(r))
	a.accepted(w, r, acc, err)
}

// customerAuth authenticates a customer route: a customer session.
func (a *API) customerAuth(r *http.Request) (domain.Principal, error) {
	tok, ok := bearer(r)
	if !ok {
		return domain.Principal{}, errs.Unauthorized("a customer session is required (POST /v1/sessions with e-mail and password)")
	}
	who, err := a.App.SessionPrincipal(r.Context(), tok)
	if err == nil {
		err = who.RequireCustomer()
	}
	return who, err
}

func (a *API) orders(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		a.fail(w, r, errs.InvalidField(firstKey(r), "unknown parameter"))
		return
	}
	who, err := a.customerAuth(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	list, err := a.App.Orders(r.Context(), who)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"orders": list})
}

func firstKey(r *http.Request) string {
	for k := range r.URL.Query() {
		return k
	}
	return ""
}

func (a *API) order(w http.ResponseWriter, r *http.Request) {
	who, err := a.customerAuth(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	id, err := pathID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	v, err := a.App.Order(r.Context(), id, who)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

type intentBody struct {
	Renew *bool `json:"renew"`
}

// renewalIntent handles POST /v1/certificates/{id}/renewal-intent (SV-2).
func (a *API) renewalIntent(w http.ResponseWriter, r *http.Request) {
	who, err := a.customerAuth(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	id, err := pathID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var body intentBody
	if p := httpx.DecodeJSON(w, r, &body, 1024); p != nil {
		httpx.WriteProblem(w, r, p)
		return
	}
	if body.Renew == nil {
		a.fail(w, r, errs.InvalidField("renew", "is required (true or false)"))
		return
	}
	cust := who.ApplicantID
	v, err := a.App.RenewalIntent(r.Context(), id, *body.Renew, &cust)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

var intentTmpl = template.Must(template.New("intent").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>{{if .Renew}}Renew / 更新する{{else}}Do not renew / 更新しない{{end}}</title></head>
<body><form method="post" action="{{.Action}}">
<p>{{if .Renew}}Renew this certificate? / この証明書を更新しますか？{{else}}Do not renew this certificate? / この証明書を更新しませんか？{{end}}</p>
<button type="submit">{{if .Renew}}Renew / 更新する{{else}}Do not renew / 更新しない{{end}}</button>
</form></body></html>`))

// intentPage handles GET /v1/renewal-intents?…: the signed link checked,
// a page whose button records the intent. Nothing changes on GET.
func (a *API) intentPage(w http.ResponseWriter, r *http.Request) {
	_, renew, err := a.App.CheckIntentLink(r.URL.Query())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = intentTmpl.Execute(w, map[string]any{"Renew": renew, "Action": "/v1/renewal-intents?" + r.URL.RawQuery})
}

// intentLink handles POST /v1/renewal-intents?…: the one-click intent of
// the notice mail, authenticated by its signature (SV-2).
func (a *API) intentLink(w http.ResponseWriter, r *http.Request) {
	cert, renew, err := a.App.CheckIntentLink(r.URL.Query())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	v, err := a.App.RenewalIntent(r.Context(), cert, renew, nil)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

type passwordBody struct {
	Token    *string `json:"token"`
	Password *string `json:"password"`
}

// setPassword handles POST /v1/customers/password: the one-time link of
// an imported customer sets the account's password.
func (a *API) setPassword(w http.ResponseWriter, r *http.Request) {
	var body passwordBody
	if p := httpx.DecodeJSON(w, r, &body, 4096); p != nil {
		httpx.WriteProblem(w, r, p)
		return
	}
	var bad domain.Errors
	token := ""
	if body.Token == nil || *body.Token == "" {
		bad = append(bad, errs.Field{Name: "token", Message: "is required"})
	} else if len(*body.Token) > 128 {
		bad = append(bad, errs.Field{Name: "token", Message: "is not a valid link token"})
	} else {
		token = *body.Token
	}
	pw := domain.CheckPassword(&bad, "password", body.Password)
	if err := bad.Err(); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.App.SetPassword(r.Context(), token, pw); err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "password_set"})
}

type importBody struct {
	PEM          *string                   `json:"pem"`
	Customer     *domain.CustomerInput     `json:"customer"`
	Organization *domain.OrganizationInput `json:"organization"`
}

// importCertificate handles POST /ops/v1/certificates/import (SV-1).
func (a *API) importCertificate(w http.ResponseWriter, r *http.Request) {
	var body importBody
	if p := httpx.DecodeJSON(w, r, &body, 64<<10); p != nil {
		httpx.WriteProblem(w, r, p)
		return
	}
	var bad domain.Errors
	in := app.Import{}
	if body.PEM == nil || strings.TrimSpace(*body.PEM) == "" {
		bad = append(bad, errs.Field{Name: "pem", Message: "is required"})
	} else if c, msg := parseCertificate(*body.PEM); msg != "" {
		bad = append(bad, errs.Field{Name: "pem", Message: msg})
	} else {
		in.Certificate = domain.ServerCertificate{DN: domain.CertificateDN(c), DNSNames: c.DNSNames,
			Serial: hex.EncodeToString(c.SerialNumber.Bytes()), IssuerDN: c.Issuer.String(),
			NotBefore: c.NotBefore, NotAfter: c.NotAfter}
	}
	in.Customer, in.Organization = domain.CheckImport(&bad, body.Customer, body.Organization)
	if err := bad.Err(); err != nil {
		a.fail(w, r, err)
		return
	}
	out, err := a.App.ImportCertificate(r.Context(), in, opsauth.Actor(r.Context()))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/certificates/"+out.CertificateID.String())
	httpx.WriteJSON(w, http.StatusCreated, out)
}

// parseCertificate reads the first certificate of a PEM text (a chain
// may follow): a TLS server certificate with a name, not a CA.
func parseCertificate(text string) (*x509.Certificate, string) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(text)))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, "must be a PEM certificate (-----BEGIN CERTIFICATE-----)"
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, "the certificate cannot be parsed: " + err.Error()
	}
	if c.IsCA {
		return nil, "is a CA certificate, not a server certificate"
	}
	if strings.TrimSpace(c.Subject.CommonName) == "" && len(c.DNSNames) == 0 {
		return nil, "the certificate names no domain (no common name, no DNS names)"
	}
	if c.Subject.CommonName == "" {
		c.Subject.CommonName = c.DNSNames[0]
	}
	return c, ""
}
