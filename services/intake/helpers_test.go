package intake_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/rpc"
	"github.com/certlife/platform/pkg/seal"
	"github.com/certlife/platform/pkg/session"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/intake"
)

// rig is intake on real Postgres and NATS. Billing's coupon check is
// answered by a stand-in on the same NATS: intake's contract with billing
// is the request/reply subject, and the e2e test runs the real billing.
type rig struct {
	*testenv.Platform
	key      *seal.PrivateKey
	codeKey  []byte
	verifier *session.Verifier
	mu       sync.Mutex
	coupons  map[string]string // coupon → refusal reason ("" = ok)
}

func newRig(t *testing.T, opts testenv.Options) *rig {
	t.Helper()
	return newRigWith(t, opts, intake.Options{})
}

// newRigWith starts intake with options and the secrets a deployment
// gives it: the notifier's public key, the session signing key and the
// code HMAC key, in 0600 files.
func newRigWith(t testing.TB, opts testenv.Options, o intake.Options) *rig {
	t.Helper()
	key, err := seal.Generate()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sessionKey := filepath.Join(dir, "session.key")
	signing, err := session.LoadOrCreateKey(sessionKey, true)
	if err != nil {
		t.Fatal(err)
	}
	codeKey := []byte(strings.Repeat("k", 16) + uuid.NewString())
	codeKeyFile := filepath.Join(dir, "code-hmac.key")
	if err := os.WriteFile(codeKeyFile, codeKey, 0o600); err != nil {
		t.Fatal(err)
	}
	r := &rig{key: key, codeKey: codeKey, coupons: map[string]string{},
		verifier: session.NewVerifier(signing.Public().(ed25519.PublicKey))}
	inner := opts.Config
	opts.Config = func(c *app.Config) {
		c.NotifierPublicKey = key.Public().String()
		c.SessionPrivateKeyFile = sessionKey
		c.CodeHMACKeyFile = codeKeyFile
		c.CancelWindow = time.Hour
		if inner != nil {
			inner(c)
		}
	}
	r.Platform = testenv.Start(t, opts, intake.NewDefinition(o))
	r.serveCoupons()
	return r
}

func (r *rig) serveCoupons() {
	_, err := rpc.Serve(r.NC, events.RPCCouponCheck, r.Log, func(_ context.Context, req events.CouponCheckRequest) (events.CouponCheckResponse, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if reason, ok := r.coupons[req.Coupon]; ok && reason != "" {
			return events.CouponCheckResponse{Reason: reason}, nil
		}
		return events.CouponCheckResponse{OK: true}, nil
	})
	if err != nil {
		r.T.Fatal(err)
	}
}

var couponSeq struct {
	sync.Mutex
	n int
}

func nextCoupon() string {
	couponSeq.Lock()
	defer couponSeq.Unlock()
	couponSeq.n++
	return fmt.Sprintf("%08d-%08d", 10000000+couponSeq.n, 20000000+couponSeq.n)
}

// body is the SPEC §5 example, with a fresh coupon and the given e-mail.
func body(email string) map[string]any {
	return map[string]any{
		"product":  "client",
		"coupon":   nextCoupon(),
		"password": "an application password",
		"language": "ja",
		"organization": map[string]any{"company_code": "984940947", "name_ja": "日本ベリサイン株式会社",
			"name_en": "VeriSign Japan K.K.", "identifier": "NTRJP-4010001012345"},
		"applicant": map[string]any{"name_ja": "辺利 太郎", "name_en": "Veri Taro",
			"title_ja": "本部長", "department_ja": "経理部",
			"title_en": "Director, Accounting Dept.",
			"email":    email, "phone": "0350001111",
			"address": map[string]any{"postal_code": "1040028", "prefecture": "東京都",
				"city": "中央区", "street": "八重洲2-8-1",
				"building": "日東ビル13F"}},
	}
}

type accepted struct {
	ID             string    `json:"id"`
	Status         string    `json:"status"`
	CancelDeadline time.Time `json:"cancel_deadline"`
}

func (r *rig) submit(t testing.TB, b map[string]any) accepted {
	t.Helper()
	resp := r.Do("POST", "/v1/applications", b)
	if resp.Status != 202 {
		t.Fatalf("submit: %d %s", resp.Status, resp.Body)
	}
	var a accepted
	resp.JSON(t, &a)
	return a
}

func basic(email, password string) []string {
	return []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(email+":"+password))}
}

type view struct {
	ID             string    `json:"id"`
	Kind           string    `json:"kind"`
	Status         string    `json:"status"`
	CancelDeadline time.Time `json:"cancel_deadline"`
	CertificateID  string    `json:"certificate_id"`
	Timeline       []struct {
		At    time.Time `json:"at"`
		Event string    `json:"event"`
	} `json:"timeline"`
}

func (r *rig) view(t *testing.T, id, email string) view {
	t.Helper()
	resp := r.Do("GET", "/v1/applications/"+id, nil, basic(email, "an application password")...)
	if resp.Status != 200 {
		t.Fatalf("get: %d %s", resp.Status, resp.Body)
	}
	var v view
	resp.JSON(t, &v)
	return v
}

// problem is an RFC 9457 body.
type problem struct {
	Type   string `json:"type"`
	Status int    `json:"status"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

func asProblem(t *testing.T, resp testenv.Response) problem {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, body %s", ct, resp.Body)
	}
	var p problem
	if err := json.Unmarshal(resp.Body, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p problem) fields() string {
	var f []string
	for _, e := range p.Errors {
		f = append(f, e.Field)
	}
	return strings.Join(f, ",")
}

// count returns the rows of an intake table.
func (r *rig) count(t testing.TB, table string) int {
	t.Helper()
	var n int
	if err := r.Unit("intake").Deps.Pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// openCode opens the sealed code of a CertificateCodeIssued event, as the
// notifier does.
func (r *rig) openCode(t testing.TB, env events.Envelope) string {
	t.Helper()
	ev, err := events.Decode[events.CertificateCodeIssued](env)
	if err != nil {
		t.Fatal(err)
	}
	code, err := r.key.Open(ev.SealedCode)
	if err != nil {
		t.Fatal(err)
	}
	return string(code)
}

// metric reads a counter or gauge of intake from /metrics.
func (r *rig) metric(t testing.TB, name string) float64 {
	t.Helper()
	resp := r.Do("GET", "/metrics", nil)
	if resp.Status != 200 {
		t.Fatalf("/metrics: %d", resp.Status)
	}
	sum, found := 0.0, false
	sc := bufio.NewScanner(bytes.NewReader(resp.Body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q", line)
		}
		sum, found = sum+v, true
	}
	if !found {
		return 0
	}
	return sum
}
