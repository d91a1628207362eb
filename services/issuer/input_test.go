package issuer_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/events"
)

// SE-4 on every issuer route: bad input is a 4xx problem and stores and
// publishes nothing — including a weak CSR key or a CSR whose signature
// does not verify (SV-6 key rules applied to client CSRs).
func TestBadInputIsAProblemAndStoresNothing_SE4(t *testing.T) {
	e := start(t, nil)
	tok := e.session("applicant-n")
	id := e.approve(application("applicant-n", events.KindNew, "", ""))
	path := "/v1/certificates/" + id + "/retrieval"

	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	good := csrPEM(t, newKey(t))
	block, _ := pem.Decode([]byte(good))
	tampered := append([]byte(nil), block.Bytes...)
	tampered[len(tampered)-3] ^= 0xff // inside the signature
	badSig := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: tampered}))
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.caCert("ica1").Raw}))

	cases := []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"malformed JSON", `{"accept_terms": tru`, 400, ""},
		{"not an object", `[1,2]`, 400, ""},
		{"empty body", ``, 400, ""},
		{"two objects", `{"accept_terms":true,"pkcs12_password":"password-1234"}{}`, 400, ""},
		{"unknown field", map[string]any{"accept_terms": true, "pkcs12_password": "password-1234", "key_type": "rsa"}, 422, "key_type"},
		{"accept_terms missing", map[string]any{"pkcs12_password": "password-1234"}, 422, "accept_terms"},
		{"accept_terms false", map[string]any{"accept_terms": false, "pkcs12_password": "password-1234"}, 422, "accept_terms"},
		{"accept_terms not boolean", map[string]any{"accept_terms": "yes", "pkcs12_password": "password-1234"}, 422, "accept_terms"},
		{"both modes", map[string]any{"accept_terms": true, "pkcs12_password": "password-1234", "csr": good}, 422, "pkcs12_password"},
		{"csr with a PKCS#12 profile", map[string]any{"accept_terms": true, "pkcs12_profile": "legacy", "csr": good}, 422, "pkcs12_profile"},
		{"short password (IS-8: 12 characters)", map[string]any{"accept_terms": true, "pkcs12_password": "12345678901"}, 422, "pkcs12_password"},
		{"short password in multibyte characters", map[string]any{"accept_terms": true, "pkcs12_password": "証明書のパスワードです"}, 422, "pkcs12_password"},
		{"password outside the BMP", map[string]any{"accept_terms": true, "pkcs12_password": "password-1234🔑"}, 422, "pkcs12_password"},
		{"unknown PKCS#12 profile", map[string]any{"accept_terms": true, "pkcs12_profile": "rc2"}, 422, "pkcs12_profile"},
		{"PKCS#12 profile in capitals", map[string]any{"accept_terms": true, "pkcs12_profile": "LEGACY"}, 422, "pkcs12_profile"},
		{"PKCS#12 profile not a string", map[string]any{"accept_terms": true, "pkcs12_profile": 1}, 422, "pkcs12_profile"},
		{"control character in password", map[string]any{"accept_terms": true, "pkcs12_password": "pass\x00word-1"}, 422, "pkcs12_password"},
		{"overlong password", map[string]any{"accept_terms": true, "pkcs12_password": strings.Repeat("p", 129)}, 422, "pkcs12_password"},
		{"password not a string", map[string]any{"accept_terms": true, "pkcs12_password": 12345678}, 422, "pkcs12_password"},
		{"CSR not PEM", map[string]any{"accept_terms": true, "csr": "hello"}, 422, "csr"},
		{"CSR is a certificate", map[string]any{"accept_terms": true, "csr": certPEM}, 422, "csr"},
		{"CSR RSA 1024", map[string]any{"accept_terms": true, "csr": csrPEM(t, rsa1024)}, 422, "csr"},
		{"CSR P-224", map[string]any{"accept_terms": true, "csr": csrPEM(t, p224)}, 422, "csr"},
		{"CSR Ed25519", map[string]any{"accept_terms": true, "csr": csrPEM(t, edKey)}, 422, "csr"},
		{"CSR bad signature", map[string]any{"accept_terms": true, "csr": badSig}, 422, "csr"},
		{"CSR followed by junk", map[string]any{"accept_terms": true, "csr": good + good}, 422, "csr"},
		{"oversized body", map[string]any{"accept_terms": true, "csr": strings.Repeat("A", 40<<10)}, 413, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := problem(t, e.as(tok, "POST", path, c.body), c.status)
			if c.field != "" && !fieldNamed(p, c.field) {
				t.Fatalf("no error for field %s: %v", c.field, p)
			}
		})
	}
	problem(t, e.as(tok, "POST", path, "hello", "Content-Type", "text/plain"), http.StatusUnsupportedMediaType)

	// A CSR for the CA's own key is refused too.
	raw, err := os.ReadFile(filepath.Join(e.Config.DataDir, "ca", "ica1.key"))
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := pem.Decode(raw)
	caKey, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if p := problem(t, e.as(tok, "POST", path, map[string]any{"accept_terms": true, "csr": csrPEM(t, caKey.(crypto.Signer))}), 422); !fieldNamed(p, "csr") {
		t.Fatalf("CA key CSR: %v", p)
	}

	// Nothing was stored or published.
	if n := e.count(`SELECT count(*) FROM serials`); n != 0 {
		t.Fatalf("%d serials drawn on bad input", n)
	}
	if n := e.count(`SELECT count(*) FROM certificates WHERE retrieval_mode IS NOT NULL OR status <> 'ready'`); n != 0 {
		t.Fatal("bad input changed the certificate")
	}
	if n := e.count(`SELECT count(*) FROM outbox WHERE subject <> 'events.CertificateReady'`); n != 0 {
		t.Fatalf("%d events emitted on bad input", n)
	}
	// The certificate is still there to retrieve.
	if !listed(e.list(tok, "retrieval"), id) {
		t.Fatal("certificate left the retrieval list after bad input")
	}

	// Other routes.
	for _, q := range []string{"", "?eligible_for=", "?eligible_for=everything", "?eligible_for=renewal&eligible_for=reissue"} {
		if p := problem(t, e.as(tok, "GET", "/v1/certificates"+q, nil), 422); !fieldNamed(p, "eligible_for") {
			t.Fatalf("list%s: %v", q, p)
		}
	}
	problem(t, e.as(tok, "GET", "/v1/certificates/"+id+"/retrieval", nil), http.StatusNotFound) // none requested
	problem(t, e.as(tok, "GET", "/v1/certificates/"+id+"/retrieval/pkcs12", nil), http.StatusConflict)
	problem(t, e.as(tok, "GET", "/v1/certificates/"+id+"/chain", nil), http.StatusConflict)
	for _, bad := range []string{"not-a-uuid", uuid.NewString()} {
		problem(t, e.as(tok, "POST", "/v1/certificates/"+bad+"/retrieval", map[string]any{"accept_terms": true, "pkcs12_password": "password-1234"}), http.StatusNotFound)
		problem(t, e.as(tok, "GET", "/v1/certificates/"+bad+"/chain", nil), http.StatusNotFound)
	}

	ops := []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"malformed JSON", `{"serial":`, 400, ""},
		{"unknown field", map[string]any{"serial": "0abc", "reason": "superseded", "note": "x"}, 422, "note"},
		{"serial missing", map[string]any{"reason": "superseded"}, 422, "serial"},
		{"reason missing", map[string]any{"serial": "0abc"}, 422, "reason"},
		{"serial not hex", map[string]any{"serial": "xyz", "reason": "superseded"}, 422, "serial"},
		{"serial zero", map[string]any{"serial": "00", "reason": "superseded"}, 422, "serial"},
		{"serial not a string", map[string]any{"serial": 12, "reason": "superseded"}, 422, "serial"},
		{"bad reason", map[string]any{"serial": "0abc", "reason": "because"}, 422, "reason"},
		{"oversized", map[string]any{"serial": strings.Repeat("a", 8<<10), "reason": "superseded"}, 413, ""},
	}
	for _, c := range ops {
		t.Run("ops "+c.name, func(t *testing.T) {
			p := problem(t, e.Ops("POST", "/ops/v1/revocations", c.body), c.status)
			if c.field != "" && !fieldNamed(p, c.field) {
				t.Fatalf("no error for field %s: %v", c.field, p)
			}
		})
	}
	if n := e.count(`SELECT count(*) FROM outbox WHERE subject <> 'events.CertificateReady'`); n != 0 {
		t.Fatal("bad ops input emitted events")
	}
}

// Applicant auth: no token or an inactive one is 401; another
// applicant's certificate is 404 on every route and never listed.
func TestApplicantAuthAndIsolation_PC7(t *testing.T) {
	e := start(t, nil)
	owner := e.session("applicant-o")
	other := e.session("applicant-p")
	id := e.approve(application("applicant-o", events.KindNew, "", ""))
	path := "/v1/certificates/" + id
	problem(t, e.Do("GET", "/v1/certificates?eligible_for=retrieval", nil), http.StatusUnauthorized)
	problem(t, e.as("no-such-session", "GET", "/v1/certificates?eligible_for=retrieval", nil), http.StatusUnauthorized)
	problem(t, e.Do("GET", path+"/chain", nil, "Authorization", "Basic dGFyb0BleGFtcGxlOnB3"), http.StatusUnauthorized)
	body := map[string]any{"accept_terms": true, "pkcs12_password": "password-1234"}
	problem(t, e.as(other, "POST", path+"/retrieval", body), http.StatusNotFound)
	if listed(e.list(other, "retrieval"), id) {
		t.Fatal("another applicant's certificate is listed")
	}
	e.retrieve(owner, id, body)
	for _, p := range []string{"/retrieval", "/retrieval/pkcs12", "/chain"} {
		problem(t, e.as(other, "GET", path+p, nil), http.StatusNotFound)
	}
	if n := e.count(`SELECT count(*) FROM pkcs12_files`); n != 1 {
		t.Fatal("another applicant's download consumed the file")
	}
}

// IS-2: serials are random, positive, at least 64 bits (127 here), the
// one recorded before signing is the one in the certificate, and the
// database refuses a duplicate.
func TestSerialsRandomRecordedAndUnique_IS2(t *testing.T) {
	e := start(t, nil)
	tok := e.session("applicant-q")
	var certs []*x509.Certificate
	for range 3 {
		id := e.approve(application("applicant-q", events.KindNew, "", ""))
		certs = append(certs, e.issueCSR(tok, id, newKey(t)))
	}
	seen := map[string]bool{}
	for _, c := range certs {
		s := c.SerialNumber
		if s.Sign() <= 0 || s.BitLen() < 64 || s.BitLen() > 127 || seen[s.String()] {
			t.Fatalf("serial %x: sign %d, %d bits, repeated %v", s, s.Sign(), s.BitLen(), seen[s.String()])
		}
		seen[s.String()] = true
		var recorded, issued int
		recorded = e.count(`SELECT count(*) FROM serials s JOIN certificates c ON c.id = s.certificate_id
			WHERE s.serial = $1 AND s.recorded_at <= c.issued_at`, hexSerial(c))
		issued = e.count(`SELECT count(*) FROM certificates WHERE serial = $1`, hexSerial(c))
		if recorded != 1 || issued != 1 {
			t.Fatalf("serial %x: recorded %d, issued %d", s, recorded, issued)
		}
	}
	_, err := e.pool().Exec(t.Context(), `INSERT INTO serials (serial, certificate_id, recorded_at)
		SELECT serial, id, now() FROM certificates WHERE serial IS NOT NULL LIMIT 1`)
	if err == nil || !strings.Contains(err.Error(), "23505") {
		t.Fatalf("duplicate serial accepted: %v", err)
	}
	_, err = e.pool().Exec(t.Context(), `UPDATE certificates SET serial = (SELECT serial FROM certificates WHERE serial IS NOT NULL LIMIT 1)
		WHERE id = (SELECT id FROM certificates WHERE serial IS NOT NULL OFFSET 1 LIMIT 1)`)
	if err == nil || !strings.Contains(err.Error(), "23505") {
		t.Fatalf("two certificates with one serial accepted: %v", err)
	}
}
