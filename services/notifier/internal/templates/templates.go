// Package templates renders the notifier's e-mails from text/template
// files embedded in the binary, one file per reason and language (NO-2).
// Each file defines a "subject" and a "body" template.
package templates

import (
	"bytes"
	"embed"
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/certlife/platform/pkg/invoicepdf"
	"github.com/certlife/platform/services/notifier/internal/domain"
)

//go:embed ja/*.tmpl en/*.tmpl
var files embed.FS

// jst is Japan Standard Time. Japan has no daylight saving time, so a
// fixed zone is exact and spares the binary a time zone database.
var jst = time.FixedZone("JST", 9*60*60)

// View is what a template sees.
type View struct {
	domain.Data
	// Code is the certificate code, present only while a code mail is
	// rendered for sending.
	Code string
	// PortalURL is where the applicant's portal is reached (PUBLIC_URL); may be empty.
	PortalURL    string
	RenewalFrom  time.Time
	RenewalUntil time.Time
	// A server renewal notice's one-click links and a password setup
	// link, opened from their sealed form only to send (SE-1).
	RenewURL, DeclineURL, SetupURL string
}

// Set holds the parsed templates of every reason and language.
type Set struct {
	byKey map[string]*template.Template // "<lang>/<reason>"
}

// Load parses every embedded template and checks that each reason has one
// in each language, so that a missing file fails at start, not at a send.
func Load() (*Set, error) {
	s := &Set{byKey: map[string]*template.Template{}}
	for _, lang := range []string{domain.Japanese, domain.English} {
		for _, reason := range domain.Reasons {
			name := lang + "/" + reason + ".tmpl"
			// The language's shared parts (greeting, footer, retrieval
			// steps) are parsed with each reason's file.
			t, err := template.New(name).Option("missingkey=error").Funcs(funcs(lang)).
				ParseFS(files, lang+"/_common.tmpl", name)
			if err != nil {
				return nil, fmt.Errorf("templates: %w", err)
			}
			for _, part := range []string{"subject", "body"} {
				if t.Lookup(part) == nil {
					return nil, fmt.Errorf("templates: %s defines no %q", name, part)
				}
			}
			s.byKey[lang+"/"+reason] = t
		}
	}
	return s, nil
}

// Render returns the subject and the body of a message.
func (s *Set) Render(reason, lang string, v View) (subject, body string, err error) {
	t, ok := s.byKey[domain.Language(lang)+"/"+reason]
	if !ok {
		return "", "", fmt.Errorf("templates: no template for reason %q", reason)
	}
	if !v.NotAfter.IsZero() {
		v.RenewalFrom, v.RenewalUntil = domain.RenewalWindow(v.NotAfter)
	}
	var sb, bb bytes.Buffer
	if err := t.ExecuteTemplate(&sb, "subject", v); err != nil {
		return "", "", fmt.Errorf("templates: %s subject: %w", reason, err)
	}
	if err := t.ExecuteTemplate(&bb, "body", v); err != nil {
		return "", "", fmt.Errorf("templates: %s body: %w", reason, err)
	}
	// A subject is one header line: no template input may fold it.
	subject = strings.Join(strings.Fields(sb.String()), " ")
	return subject, strings.TrimLeft(bb.String(), "\n"), nil
}

func funcs(lang string) template.FuncMap {
	ja := lang == domain.Japanese
	return template.FuncMap{
		// datetime: Japanese mails in JST, English ones in UTC.
		"datetime": func(t time.Time) string {
			if ja {
				return t.In(jst).Format("2006年1月2日 15:04") + "（日本時間）"
			}
			return t.UTC().Format("2 January 2006 15:04 UTC")
		},
		"date": func(t time.Time) string {
			if ja {
				return t.In(jst).Format("2006年1月2日")
			}
			return t.UTC().Format("2 January 2006")
		},
		// product names a product; unknown (e.g. a revocation seen
		// before its issuance) is just "the certificate".
		"product": func(p string) string {
			names := map[string][2]string{
				"client": {"クライアント証明書", "client certificate"},
				"server": {"サーバ証明書", "server certificate"},
				"":       {"証明書", "certificate"},
			}
			n, ok := names[p]
			if !ok {
				n = names[""]
			}
			if ja {
				return n[0]
			}
			return n[1]
		},
		// money writes integer minor units in the currency's major units
		// (BI-4): "13,200 円" / "JPY 13,200".
		"money": func(minor int64, currency string) string {
			if ja && currency == "JPY" {
				return invoicepdf.FormatAmount(minor, currency) + " 円"
			}
			return currency + " " + invoicepdf.FormatAmount(minor, currency)
		},
		"method": func(m string) string {
			names := map[string][2]string{
				"card":          {"クレジットカード", "card"},
				"bank_transfer": {"銀行振込", "bank transfer"},
			}
			n, ok := names[m]
			if !ok {
				return m
			}
			if ja {
				return n[0]
			}
			return n[1]
		},
		"kind": func(k string) string {
			names := map[string][2]string{
				"new":     {"新規申請", "new application"},
				"renewal": {"更新申請", "renewal application"},
				"reissue": {"再発行申請", "reissue application"},
			}
			n, ok := names[k]
			if !ok {
				n = names["new"]
			}
			if ja {
				return n[0]
			}
			return n[1]
		},
		"revocation": func(r string) string {
			names := map[string][2]string{
				"superseded":           {"再発行された証明書への切り替え", "superseded by a reissued certificate"},
				"keyCompromise":        {"秘密鍵の紛失・漏洩（危殆化）", "the private key was lost or compromised"},
				"cessationOfOperation": {"利用の終了", "cessation of operation"},
				"affiliationChanged":   {"所属の変更", "change of affiliation"},
				"privilegeWithdrawn":   {"利用資格の取り消し", "privilege withdrawn"},
				"unspecified":          {"理由の指定なし", "unspecified"},
			}
			n, ok := names[r]
			if !ok {
				return r
			}
			if ja {
				return n[0]
			}
			return n[1]
		},
	}
}
