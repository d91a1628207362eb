package issuer_test

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/issuer"
	"github.com/certlife/platform/services/issuer/internal/issuance"
)

const reviewerToken = "test-reviewer-token-0123456789"

type massProgress struct {
	ID               string     `json:"id"`
	Reason           string     `json:"reason"`
	Total            int        `json:"total"`
	Unmatched        int        `json:"unmatched"`
	Revoked          int        `json:"revoked"`
	NoticesQueued    int        `json:"notices_queued"`
	Issuers          []string   `json:"issuers"`
	CRLRegeneratedAt *time.Time `json:"crl_regenerated_at"`
	Done             bool       `json:"done"`
}

// massRevoke starts a mass revocation and waits until it is done.
func (e *env) massRevoke(body map[string]any) massProgress {
	e.t.Helper()
	r := e.Ops("POST", "/ops/v1/mass-revocations", body)
	if r.Status != http.StatusAccepted {
		e.t.Fatalf("mass revocation: %d %s", r.Status, r.Body)
	}
	var p massProgress
	r.JSON(e.t, &p)
	if p.ID == "" || r.Header.Get("Location") != "/ops/v1/mass-revocations/"+p.ID {
		e.t.Fatalf("202 %s, Location %q", r.Body, r.Header.Get("Location"))
	}
	testenv.Eventually(e.t, wait, "the mass revocation done", func() bool {
		g := e.Ops("GET", "/ops/v1/mass-revocations/"+p.ID, nil)
		if g.Status != http.StatusOK {
			e.t.Fatalf("progress: %d %s", g.Status, g.Body)
		}
		p = massProgress{}
		g.JSON(e.t, &p)
		return p.Done
	})
	return p
}

// OP-5: a mass revocation by organization, by public key (SHA-256 of the
// SPKI) or by serials revokes every chosen certificate in batches, makes
// ONE CRL for the whole revocation, notices each subscriber once (the
// first of their certificates' CertificateRevoked carries the recipient),
// audits the request, each batch and the end, and is for admins only.
func TestMassRevocation_OP5(t *testing.T) {
	old := issuance.DefaultMassBatch
	issuance.DefaultMassBatch = 2 // three certificates = two batches
	t.Cleanup(func() { issuance.DefaultMassBatch = old })
	e := start(t, func(c *app.Config) { c.OpsTokens = testenv.OpsToken + ":admin," + reviewerToken + ":reviewer" })

	issue := func(applicant, org string, key *ecdsa.PrivateKey) (string, string, []byte) {
		a := application(applicant, events.KindNew, "", "")
		if org != "" {
			a.Organization.NameEn, a.Organization.Identifier = org, "NTRJP-1234567890123"
		}
		id := e.approve(a)
		k := key
		if k == nil {
			k = newKey(t)
		}
		c := e.issueCSR(e.session(applicant), id, k)
		spki := sha256.Sum256(c.RawSubjectPublicKeyInfo)
		return id, hexSerial(c), spki[:]
	}
	a1, sa1, _ := issue("mr-a", "", nil)
	a2, sa2, _ := issue("mr-a", "", nil) // same subscriber, second certificate
	b1, sb1, _ := issue("mr-b", "", nil)
	_, sc1, _ := issue("mr-c", "Other Corp K.K.", nil)
	shared := newKey(t)
	_, sd1, spki := issue("mr-d", "Other Corp K.K.", shared)
	_, sd2, _ := issue("mr-e", "Other Corp K.K.", shared)

	// Admin only (SE-5); bad input is a 422 that changes nothing.
	r := e.Do("POST", "/ops/v1/mass-revocations", map[string]any{"reason": "superseded", "organization": "x"},
		"Authorization", "Bearer "+reviewerToken)
	problem(t, r, http.StatusForbidden)
	problem(t, e.Do("GET", "/ops/v1/mass-revocations/00000000-0000-0000-0000-000000000000", nil), http.StatusUnauthorized)
	for _, body := range []map[string]any{
		{"reason": "superseded"},
		{"reason": "superseded", "organization": "x", "serials": []string{sa1}},
		{"reason": "unspecified", "organization": "x"},
		{"reason": "superseded", "public_key_sha256": "abcd"},
		{"reason": "superseded", "serials": []string{}},
		{"reason": "superseded", "serials": []string{"xyz"}},
		{"reason": "superseded", "organization": "  "},
	} {
		problem(t, e.Ops("POST", "/ops/v1/mass-revocations", body), 422)
	}
	if n := e.count(`SELECT count(*) FROM mass_revocations`); n != 0 {
		t.Fatalf("%d mass revocations after refusals", n)
	}
	problem(t, e.Ops("GET", "/ops/v1/mass-revocations/00000000-0000-0000-0000-000000000000", nil), http.StatusNotFound)
	problem(t, e.Ops("GET", "/ops/v1/mass-revocations/nope", nil), http.StatusNotFound)

	before := e.crl().Number
	p := e.massRevoke(map[string]any{"reason": "keyCompromise", "organization": "VeriSign Japan K.K."})
	if p.Total != 3 || p.Revoked != 3 || p.NoticesQueued != 2 || p.CRLRegeneratedAt == nil ||
		len(p.Issuers) != 1 || p.Issuers[0] != "ica1" {
		t.Fatalf("progress %+v", p)
	}
	crl := e.crl()
	if want := new(big.Int).Add(before, big.NewInt(1)); crl.Number.Cmp(want) != 0 {
		t.Fatalf("CRL number %v after %v: want exactly one new CRL for the batch", crl.Number, before)
	}
	for _, s := range []string{sa1, sa2, sb1} {
		n, _ := new(big.Int).SetString(s, 16)
		if reason, ok := crlReason(crl, n); !ok || reason != 1 {
			t.Fatalf("serial %s: listed=%v reason=%d", s, ok, reason)
		}
	}
	if len(crl.RevokedCertificateEntries) != 3 {
		t.Fatalf("%d CRL entries, want 3", len(crl.RevokedCertificateEntries))
	}
	// One notice per subscriber: mr-a's two certificates carry one recipient.
	noticed := map[string]int{}
	for _, id := range []string{a1, a2, b1} {
		ev := e.WaitEvent(events.TypeCertificateRevoked, id, wait)
		rp, _ := events.Decode[events.CertificateRevoked](ev)
		if rp.MassRevocationID != p.ID || rp.Reason != "keyCompromise" {
			t.Fatalf("event %+v", rp)
		}
		if rp.Recipient.Email != "" {
			noticed[rp.Recipient.Email]++
			if rp.Recipient.Language != "ja" {
				t.Fatalf("recipient %+v", rp.Recipient)
			}
		}
	}
	if len(noticed) != 2 || noticed["mr-a@example.co.jp"] != 1 || noticed["mr-b@example.co.jp"] != 1 {
		t.Fatalf("notices %v", noticed)
	}
	for action, want := range map[string]int{issuance.AuditMassRevocationStarted: 1, issuance.AuditMassRevoked: 2,
		issuance.AuditMassRevocationDone: 1} {
		if n := e.count(`SELECT count(*) FROM audit_log WHERE action = $1 AND subject = $2`, action, p.ID); n != want {
			t.Fatalf("%d audit entries %s, want %d", n, action, want)
		}
	}

	// By public key: both certificates of the shared key, any spelling.
	spelled := strings.ToUpper(hex.EncodeToString(spki))
	p = e.massRevoke(map[string]any{"reason": "keyCompromise", "public_key_sha256": spelled})
	if p.Total != 2 || p.Revoked != 2 || p.NoticesQueued != 2 {
		t.Fatalf("by key: %+v", p)
	}
	// By serials: an unknown or already revoked serial is counted, not an error.
	p = e.massRevoke(map[string]any{"reason": "cessationOfOperation", "serials": []string{sc1, sd1, "0abc"}})
	if p.Total != 1 || p.Unmatched != 2 || p.Revoked != 1 || p.NoticesQueued != 1 {
		t.Fatalf("by serials: %+v", p)
	}
	crl = e.crl()
	for _, s := range []string{sc1, sd1, sd2} {
		n, _ := new(big.Int).SetString(s, 16)
		if _, ok := crlReason(crl, n); !ok {
			t.Fatalf("serial %s not on the CRL", s)
		}
	}
	// Nothing left to revoke: done at once, no CRL made.
	p = e.massRevoke(map[string]any{"reason": "superseded", "organization": "VeriSign Japan K.K."})
	if p.Total != 0 || p.Revoked != 0 || p.CRLRegeneratedAt != nil {
		t.Fatalf("empty: %+v", p)
	}
}

// OP-5: a subscriber's one notice lists every certificate of theirs the
// mass revocation takes, even when they span batches (one certificate per
// batch here): the event that carries the recipient names them all, the
// others name none.
func TestMassRevocationNoticeListsAll_OP5(t *testing.T) {
	old := issuance.DefaultMassBatch
	issuance.DefaultMassBatch = 1
	t.Cleanup(func() { issuance.DefaultMassBatch = old })
	e := start(t, nil)
	issue := func(applicant string) (string, string) {
		a := application(applicant, events.KindNew, "", "")
		a.Organization.NameEn = "Listed Corp K.K."
		id := e.approve(a)
		return id, hexSerial(e.issueCSR(e.session(applicant), id, newKey(t)))
	}
	var ids []string
	want := map[string]bool{}
	for range 3 {
		id, serial := issue("ml-a")
		ids, want[normSerial(serial)] = append(ids, id), true
	}
	bID, bSerial := issue("ml-b")
	p := e.massRevoke(map[string]any{"reason": "keyCompromise", "organization": "Listed Corp K.K."})
	if p.Total != 4 || p.Revoked != 4 || p.NoticesQueued != 2 {
		t.Fatalf("progress %+v", p)
	}
	lists := map[string][]events.RevokedCertificate{}
	for _, id := range append(ids, bID) {
		rp, _ := events.Decode[events.CertificateRevoked](e.WaitEvent(events.TypeCertificateRevoked, id, wait))
		if rp.Recipient.Email == "" {
			if len(rp.Certificates) != 0 || rp.CertificatesTotal != 0 {
				t.Fatalf("an event without recipient lists %+v", rp.Certificates)
			}
			continue
		}
		if _, dup := lists[rp.Recipient.Email]; dup {
			t.Fatalf("%s noticed twice", rp.Recipient.Email)
		}
		if rp.CertificatesTotal != len(rp.Certificates) {
			t.Fatalf("total %d, listed %d", rp.CertificatesTotal, len(rp.Certificates))
		}
		lists[rp.Recipient.Email] = rp.Certificates
	}
	a, b := lists["ml-a@example.co.jp"], lists["ml-b@example.co.jp"]
	if len(a) != 3 || len(b) != 1 || normSerial(b[0].Serial) != normSerial(bSerial) || b[0].Product != events.ProductClient ||
		b[0].Subject != "ml-b@example.co.jp" {
		t.Fatalf("lists %+v", lists)
	}
	for _, c := range a {
		if !want[normSerial(c.Serial)] {
			t.Fatalf("ml-a's list %+v, want serials %v", a, want)
		}
		delete(want, normSerial(c.Serial))
	}
}

func normSerial(s string) string {
	n, _ := new(big.Int).SetString(strings.ReplaceAll(s, ":", ""), 16)
	return n.Text(16)
}

// OP-5: certificates issued before the SPKI hash was recorded get it at
// the next start of an issuer, and can then be revoked by public key.
func TestSPKIHashBackfilledAtStart_OP5(t *testing.T) {
	e := start(t, nil)
	id := e.approve(application("mr-f", events.KindNew, "", ""))
	cert := e.issueCSR(e.session("mr-f"), id, newKey(t))
	spki := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	if n := e.count(`SELECT count(*) FROM certificates WHERE spki_sha256 = $1`, spki[:]); n != 1 {
		t.Fatalf("spki_sha256 not recorded at issuance (%d)", n)
	}
	if _, err := e.pool().Exec(t.Context(), `UPDATE certificates SET spki_sha256 = NULL`); err != nil {
		t.Fatal(err)
	}
	// A second replica starting on the same database (as after a restart).
	cfg := e.Config
	p := testenv.Start(t, testenv.Options{DBURL: e.DBURL, NATS: e.NATS, Clock: e.Clock,
		Config: func(c *app.Config) {
			c.DataDir, c.DevMode, c.SessionPublicKey = cfg.DataDir, true, cfg.SessionPublicKey
		}},
		issuer.Definition)
	var n int
	if err := p.Unit("issuer").Deps.Pool.QueryRow(t.Context(), `SELECT count(*) FROM certificates WHERE spki_sha256 = $1`, spki[:]).Scan(&n); err != nil || n != 1 {
		t.Fatalf("backfilled: %d %v", n, err)
	}
	r := p.Ops("POST", "/ops/v1/mass-revocations", map[string]any{"reason": "keyCompromise", "public_key_sha256": hex.EncodeToString(spki[:])})
	var m massProgress
	r.JSON(t, &m)
	if r.Status != http.StatusAccepted || m.Total != 1 {
		t.Fatalf("by key after backfill: %d %s", r.Status, r.Body)
	}
}
