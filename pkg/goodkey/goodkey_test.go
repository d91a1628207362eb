package goodkey_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/certlife/platform/pkg/goodkey"
)

var policy goodkey.Policy

func mustRSA(t *testing.T, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func refused(t *testing.T, err error, words string) {
	t.Helper()
	p, ok := goodkey.IsProblem(err)
	if !ok || !strings.Contains(p.Message, words) || p.Field != "csr" {
		t.Fatalf("want a refusal saying %q, got %v", words, err)
	}
}

// SV-6: RSA ≥ 2048 or ECDSA P-256/P-384, nothing else.
func TestKeyTypesSV6(t *testing.T) {
	if err := policy.CheckKey(&mustRSA(t, 2048).PublicKey); err != nil {
		t.Fatalf("RSA-2048: %v", err)
	}
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384()} {
		k, _ := ecdsa.GenerateKey(c, rand.Reader)
		if err := policy.CheckKey(&k.PublicKey); err != nil {
			t.Fatalf("%s: %v", c.Params().Name, err)
		}
	}
	k521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	refused(t, policy.CheckKey(&k521.PublicKey), "P-521")
	refused(t, policy.CheckKey(&mustRSA(t, 1024).PublicKey), "at least 2048")
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	refused(t, policy.CheckKey(pub), "not accepted")
	small := mustRSA(t, 2048).PublicKey
	small.E = 3
	refused(t, policy.CheckKey(&small), "exponent 3")
}

// prime returns a random prime of bits bits that is ≡ r (mod m), or any
// prime when m is nil.
func prime(t *testing.T, bits int, m, r *big.Int) *big.Int {
	t.Helper()
	for range 100000 {
		c, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bits)))
		if err != nil {
			t.Fatal(err)
		}
		c.SetBit(c, bits-1, 1)
		c.SetBit(c, bits-2, 1) // products of two such primes have all their bits
		if m != nil {
			c.Sub(c, new(big.Int).Mod(c, m)).Add(c, r)
		}
		if c.BitLen() == bits && c.ProbablyPrime(20) {
			return c
		}
	}
	t.Fatal("no prime found")
	return nil
}

// SV-6: a modulus with a small factor is refused.
func TestSmallFactorSV6(t *testing.T) {
	n := new(big.Int)
	for n.BitLen() != 2048 {
		n.Mul(big.NewInt(743), prime(t, 2038, nil, nil))
	}
	refused(t, policy.CheckKey(&rsa.PublicKey{N: n, E: 65537}), "small prime factor (743)")
}

// SV-6: a key of the ROCA structure (primes ≡ 65537^a mod the product of
// small primes, as the Infineon library made them) is refused.
func TestROCASV6(t *testing.T) {
	m := big.NewInt(1)
	for _, p := range []int64{11, 13, 17, 19, 37, 53, 61, 71, 73, 79, 97, 103, 107, 109, 127, 151, 157} {
		m.Mul(m, big.NewInt(p))
	}
	g := big.NewInt(65537)
	p := prime(t, 1024, m, new(big.Int).Exp(g, big.NewInt(1234567), m))
	q := prime(t, 1024, m, new(big.Int).Exp(g, big.NewInt(7654321), m))
	refused(t, policy.CheckKey(&rsa.PublicKey{N: new(big.Int).Mul(p, q), E: 65537}), "ROCA")
}

// SV-6: primes too close to each other are found by Fermat's method.
func TestFermatSV6(t *testing.T) {
	p := prime(t, 1024, nil, nil)
	q := new(big.Int).Add(p, big.NewInt(2))
	for !q.ProbablyPrime(20) {
		q.Add(q, big.NewInt(2))
	}
	refused(t, policy.CheckKey(&rsa.PublicKey{N: new(big.Int).Mul(p, q), E: 65537}), "factored")
}

// SV-6: a blocklisted (compromised) key is refused; the fingerprint is the
// one OpenSSL's modulus output gives, as Debian's openssl-blacklist lists it.
func TestBlocklistSV6(t *testing.T) {
	k := mustRSA(t, 2048)
	tail, prefix := goodkey.Fingerprints(&k.PublicKey)
	if bin, err := exec.LookPath("openssl"); err == nil {
		der := x509.MarshalPKCS1PrivateKey(k)
		f := t.TempDir() + "/k.pem"
		if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("sh", "-c", bin+" rsa -noout -modulus -in "+f+" | sha1sum | cut -c 21-40").Output()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(out)); got != tail {
			t.Fatalf("openssl-blacklist fingerprint %s, ours %s", got, tail)
		}
	} else if os.Getenv("CI") == "true" {
		t.Fatal("openssl is required under CI")
	}
	bl, err := goodkey.LoadBlocklist(strings.NewReader("# test list\n" + tail + "\n"))
	if err != nil || bl.Len() != 1 {
		t.Fatal(err)
	}
	refused(t, goodkey.Policy{Blocklist: bl}.CheckKey(&k.PublicKey), "compromised")
	bl2, _ := goodkey.LoadBlocklist(strings.NewReader(prefix + "\n"))
	refused(t, goodkey.Policy{Blocklist: bl2}.CheckKey(&k.PublicKey), "compromised")
	if err := (goodkey.Policy{Blocklist: bl}).CheckKey(&mustRSA(t, 2048).PublicKey); err != nil {
		t.Fatalf("another key: %v", err)
	}
	if _, err := goodkey.LoadBlocklist(strings.NewReader("xyz\n")); err == nil {
		t.Fatal("bad line accepted")
	}
}

func csr(t *testing.T, key any, subject pkix.Name) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject, DNSNames: []string{subject.CommonName}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// SV-6: the CSR's signature verifies, it is one PEM block, and its subject has no OU.
func TestCSRSV6(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good := csr(t, k, pkix.Name{CommonName: "www.example.jp", Organization: []string{"Example K.K."}})
	c, err := goodkey.ParseCSR(good)
	if err != nil || policy.CheckCSR(c) != nil {
		t.Fatalf("good CSR: %v %v", err, policy.CheckCSR(c))
	}
	ou := csr(t, k, pkix.Name{CommonName: "www.example.jp", OrganizationalUnit: []string{"IT"}})
	c, _ = goodkey.ParseCSR(ou)
	refused(t, policy.CheckCSR(c), "organizational unit (OU=IT)")

	block, _ := pem.Decode([]byte(good))
	block.Bytes[len(block.Bytes)-5] ^= 0xff // break the signature
	_, err = goodkey.ParseCSR(string(pem.EncodeToMemory(block)))
	refused(t, err, "")
	_, err = goodkey.ParseCSR("not a csr")
	refused(t, err, "one PEM block")
	_, err = goodkey.ParseCSR(good + good)
	refused(t, err, "exactly one PEM block")
}
