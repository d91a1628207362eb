package split

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/certlife/platform/pkg/testenv"
)

// flow is the client side: front-end applications driving the API.
type flow struct {
	api        string
	mail       *mailbox
	submitted  atomic.Int64
	retrieving atomic.Int64
	outages    atomic.Int64          // answers 502/503/504 or none, tried again
	failed     atomic.Pointer[error] // the first application that gave up: stop waiting at once
	killsDone  chan struct{}
}

type result struct {
	email, application, serial string
	err                        error
}

// client runs one application through the whole flow: submit, code by
// mail, session, retrieval, PKCS#12 download, status issued.
func (f *flow) client(ctx context.Context, coupon, email string) (result, error) {
	var res result
	body := map[string]any{
		"product": "client", "coupon": coupon, "password": password, "language": "ja",
		"organization": map[string]any{"company_code": "984940947", "name_ja": "日本ベリサイン株式会社", "name_en": "VeriSign Japan K.K.", "identifier": "NTRJP-4010001012345"},
		"applicant": map[string]any{"name_ja": "辺利 太郎", "name_en": "Veri Taro", "title_ja": "本部長", "department_ja": "経理部",
			"title_en": "Director, Accounting Dept.", "email": email, "phone": "0350001111",
			"address": map[string]any{"postal_code": "1040028", "prefecture": "東京都", "city": "中央区",
				"street": "八重洲2-8-1", "building": "日東ビル13F"}},
	}
	// One Idempotency-Key for every attempt of this submission (SE-6).
	r := f.retry(ctx, "POST", f.api+"/v1/applications", body, "Idempotency-Key", uuid.NewString())
	if r.status != http.StatusAccepted {
		return res, fmt.Errorf("submit: %s", r)
	}
	var app struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(r.body, &app); err != nil {
		return res, err
	}
	res.application = app.ID
	f.submitted.Add(1)

	code, err := f.mail.waitCode(ctx, email)
	if err != nil {
		return res, err
	}
	r = f.retry(ctx, "POST", f.api+"/v1/sessions", map[string]string{"email": email, "password": password, "certificate_code": code})
	if r.status != http.StatusCreated {
		return res, fmt.Errorf("session: %s", r)
	}
	var sess struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(r.body, &sess); err != nil {
		return res, err
	}
	auth := []string{"Authorization", "Bearer " + sess.Token}

	var certs struct {
		Certificates []struct {
			ID            string `json:"id"`
			ApplicationID string `json:"application_id"`
		} `json:"certificates"`
	}
	for len(certs.Certificates) == 0 {
		r = f.retry(ctx, "GET", f.api+"/v1/certificates?eligible_for=retrieval", nil, auth...)
		if r.status != http.StatusOK {
			return res, fmt.Errorf("certificates: %s", r)
		}
		if err := json.Unmarshal(r.body, &certs); err != nil {
			return res, err
		}
		if err := pause(ctx); err != nil {
			return res, err
		}
	}
	if len(certs.Certificates) != 1 || certs.Certificates[0].ApplicationID != app.ID {
		return res, fmt.Errorf("ready for retrieval: %+v", certs.Certificates)
	}
	cert := certs.Certificates[0].ID

	// The retrieval signs at once; asking again is idempotent (SPEC §5).
	f.retrieving.Add(1)
	r = f.retry(ctx, "POST", f.api+"/v1/certificates/"+cert+"/retrieval",
		map[string]any{"accept_terms": true, "pkcs12_password": p12Password}, auth...)
	if r.status != http.StatusAccepted {
		return res, fmt.Errorf("retrieval: %s", r)
	}
	for {
		r = f.retry(ctx, "GET", f.api+"/v1/certificates/"+cert+"/retrieval", nil, auth...)
		var progress struct {
			Status string `json:"status"`
		}
		if r.status != http.StatusOK || json.Unmarshal(r.body, &progress) != nil || progress.Status == "failed" {
			return res, fmt.Errorf("retrieval progress: %s", r)
		}
		if progress.Status == "ready" {
			break
		}
		if err := pause(ctx); err != nil {
			return res, err
		}
	}
	// The PKCS#12 is served once (PC-14): an answer lost to a replica
	// killed mid-download cannot be asked again, so downloads wait until
	// the kills are over.
	select {
	case <-f.killsDone:
	case <-ctx.Done():
		return res, ctx.Err()
	}
	r = f.retry(ctx, "GET", f.api+"/v1/certificates/"+cert+"/retrieval/pkcs12", nil, auth...)
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/x-pkcs12" {
		return res, fmt.Errorf("pkcs12: %s", r)
	}
	_, leaf, _, err := pkcs12.DecodeChain(r.body, p12Password)
	if err != nil {
		return res, fmt.Errorf("open PKCS#12: %w", err)
	}
	if len(leaf.EmailAddresses) != 1 || leaf.EmailAddresses[0] != email {
		return res, fmt.Errorf("certificate for %v", leaf.EmailAddresses)
	}
	res.serial = leaf.SerialNumber.Text(16)

	for {
		r = f.retry(ctx, "GET", f.api+"/v1/applications/"+app.ID, nil, auth...)
		var view struct {
			Status        string `json:"status"`
			CertificateID string `json:"certificate_id"`
		}
		if r.status != http.StatusOK || json.Unmarshal(r.body, &view) != nil {
			return res, fmt.Errorf("application: %s", r)
		}
		if view.Status == "issued" {
			if view.CertificateID != cert {
				return res, fmt.Errorf("issued with certificate %s, retrieved %s", view.CertificateID, cert)
			}
			return res, nil
		}
		if err := pause(ctx); err != nil {
			return res, err
		}
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func (r response) String() string {
	if r.err != nil {
		return r.err.Error()
	}
	return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body))
}

// retry sends a request until it gets an answer that is not an outage
// (502, 503, 504, or no answer): while a replica or a NATS node is down,
// a client sees those and tries again, as a front-end would.
func (f *flow) retry(ctx context.Context, method, url string, body any, headers ...string) response {
	for {
		r := call(ctx, method, url, body, headers...)
		if r.err == nil && r.status != http.StatusBadGateway && r.status != http.StatusServiceUnavailable && r.status != http.StatusGatewayTimeout {
			return r
		}
		f.outages.Add(1)
		if err := pause(ctx); err != nil {
			if r.err == nil {
				r.err = fmt.Errorf("still %d when the test's deadline passed: %s", r.status, r.body)
			}
			return r
		}
	}
}

func call(ctx context.Context, method, url string, body any, headers ...string) response {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return response{err: err}
		}
		rd = bytes.NewReader(raw)
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, method, url, rd)
	if err != nil {
		return response{err: err}
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: raw, err: err}
}

// pause is the poll interval of the clients; it ends early with ctx.
func pause(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(100 * time.Millisecond):
		return nil
	}
}

// mailbox reads the mail sink's directory for the clients: one reader,
// at most every 100ms, however many clients wait.
type mailbox struct {
	dir  string
	mu   sync.Mutex
	last time.Time
	seen map[string][]string // recipient → codes, in order
}

func newMailbox(dir string) *mailbox { return &mailbox{dir: dir, seen: map[string][]string{}} }

func (m *mailbox) codes(email string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if time.Since(m.last) >= 100*time.Millisecond {
		mails, err := testenv.ReadMailDir(m.dir)
		if err != nil {
			return nil, err
		}
		m.seen = map[string][]string{}
		for _, ml := range mails {
			if c := codeRe.FindString(ml.Body); c != "" {
				for _, to := range ml.To {
					m.seen[to] = append(m.seen[to], c)
				}
			}
		}
		m.last = time.Now()
	}
	return m.seen[email], nil
}

func (m *mailbox) waitCode(ctx context.Context, email string) (string, error) {
	for {
		codes, err := m.codes(email)
		if err != nil {
			return "", err
		}
		if len(codes) > 0 {
			return codes[0], nil
		}
		if err := pause(ctx); err != nil {
			return "", fmt.Errorf("no certificate-code mail to %s: %w", email, err)
		}
	}
}
