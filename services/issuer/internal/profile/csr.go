package profile

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/certlife/platform/pkg/goodkey"
)

// MaxCSR bounds the PEM text of a CSR (an 8192-bit RSA CSR is ~3 KiB).
const MaxCSR = 16 << 10

// ParseCSR reads a PEM CSR, checks its signature (proof of possession of
// the key) and its key, and returns the public key. Only the key is used:
// the subject of a client certificate comes from the approved application,
// never from the CSR.
func ParseCSR(text string) (crypto.PublicKey, error) {
	if len(text) > MaxCSR {
		return nil, fmt.Errorf("a CSR is at most %d bytes", MaxCSR)
	}
	block, rest := pem.Decode([]byte(text))
	if block == nil {
		return nil, errors.New("not a PEM block")
	}
	if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("PEM block is %q, want CERTIFICATE REQUEST", block.Type)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("exactly one PEM block is expected")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, errors.New("the CSR does not parse")
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, errors.New("the CSR signature does not verify")
	}
	if err := CheckPublicKey(csr.PublicKey); err != nil {
		return nil, err
	}
	// Known-weak keys too (S/MIME BR 6.1.1.3): small factors, ROCA,
	// primes close enough for Fermat's method — pkg/goodkey's checks,
	// the ones server certificates get (SV-6).
	if err := (goodkey.Policy{}).CheckKey(csr.PublicKey); err != nil {
		return nil, err
	}
	return csr.PublicKey, nil
}
