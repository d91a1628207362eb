package issuer_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/certlife/platform/services/issuer/internal/issuance"
)

// gpgsmTestKey makes a fresh RSA key and a self-signed certificate for
// it, so every import brings gpgsm a new secret key.
func gpgsmTestKey(t *testing.T, n int) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(int64(n + 1)),
		Subject:      pkix.Name{CommonName: fmt.Sprintf("gpgsm p12 %d", n)},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

// IS-8 with gpgsm 2.2.40: gpgsm misderives the 3DES key of PKCS#12 PBE
// for about 1 salt in 128 (sm/minip12.c string_to_key, see
// internal/issuance/pkcs12_gpgsm.go), so about 1 plain go-pkcs12 legacy
// file in 64 does not import. The check predicts it — a file it flags
// is refused by the real gpgsm — and every legacy file EncodePKCS12
// makes imports. (Before the fix about 1 in 40 failed; 60 imports keep
// the test under a minute, the unit tests in internal/issuance cover
// the check itself.)
func TestGpgsmImportsEveryLegacyPKCS12_IS8(t *testing.T) {
	g := newGpgsm(t)
	const pw = "gpgsm-legacy-pass"

	// A plain encoding the check flags: gpgsm refuses it.
	key, cert := gpgsmTestKey(t, 0)
	var flagged []byte
	for i := 0; i < 3000 && flagged == nil; i++ {
		der, err := pkcs12.LegacyDES.Encode(key, cert, nil, pw)
		if err != nil {
			t.Fatal(err)
		}
		bad, err := issuance.GpgsmMisderivesPKCS12(der, pw)
		if err != nil {
			t.Fatal(err)
		}
		if bad {
			flagged = der
		}
	}
	if flagged == nil {
		t.Fatal("no plain legacy encoding in 3000 was flagged")
	}
	out, err := g.run([]byte(pw+"\n"), "--passphrase-fd", "0", "--import", writeFile(t, g.home, "flagged.p12", flagged))
	// (The certificates' salt hit: "encryptedData error"; the key bag's:
	// "data error at shrouded_key_bag.decrypted-text", the certificate
	// alone is imported.)
	if strings.Contains(string(out), "secret keys imported: 1") {
		t.Fatalf("gpgsm imported a file the check flags (%v):\n%s", err, out)
	}

	// Every file the issuer makes imports.
	const n = 60
	for i := 1; i <= n; i++ {
		key, cert := gpgsmTestKey(t, i)
		der, err := issuance.EncodePKCS12(issuance.PKCS12Legacy, key, cert, cert, pw)
		if err != nil {
			t.Fatal(err)
		}
		out, err := g.run([]byte(pw+"\n"), "--passphrase-fd", "0", "--import", writeFile(t, g.home, fmt.Sprintf("leaf%d.p12", i), der))
		if err != nil || !strings.Contains(string(out), "secret keys imported: 1") {
			t.Fatalf("encoding %d of %d: gpgsm did not import it (%v):\n%s", i, n, err, out)
		}
	}
}
