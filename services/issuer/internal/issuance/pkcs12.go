package issuance

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/base32"
	"fmt"
	"strings"

	"software.sslmate.com/src/go-pkcs12"
)

// PKCS#12 profiles (IS-8).
const (
	// PKCS12Modern: PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC, an
	// HMAC-SHA256 MAC (go-pkcs12 Modern2023). The default.
	PKCS12Modern = "modern"
	// PKCS12Legacy: PBE-SHA1-3DES for key and certificates, an HMAC-SHA1
	// MAC (go-pkcs12 LegacyDES; OpenSSL's -descert): 112-bit strength, the
	// S/MIME BR floor, for clients that cannot read the modern profile
	// (Windows Server 2016, gpgsm 2.2). RC2 is never used.
	PKCS12Legacy = "legacy"
)

// Password rules (IS-8).
const (
	MinPasswordLen = 12
	MaxPasswordLen = 128
	// generatedPasswordBytes: 15 random bytes = 120 bits (≥ 112, SBR
	// 6.1.2), written as 24 base32 letters and digits in groups of four.
	generatedPasswordBytes = 15
)

// EncodePKCS12 makes the PKCS#12 file of key and cert with the issuing
// CA as its chain, in profile (empty = modern). Never the package-level
// pkcs12.Encode, which is RC2.
func EncodePKCS12(profile string, key crypto.Signer, cert, issuer *x509.Certificate, password string) ([]byte, error) {
	var enc *pkcs12.Encoder
	switch profile {
	case "", PKCS12Modern:
		enc = pkcs12.Modern2023
	case PKCS12Legacy:
		enc = pkcs12.LegacyDES
	default:
		return nil, fmt.Errorf("unknown PKCS#12 profile %q", profile)
	}
	if profile != PKCS12Legacy {
		return enc.Encode(key, cert, []*x509.Certificate{issuer}, password)
	}
	// gpgsm 2.2 misderives the 3DES key for about 1 salt in 128, so
	// about 1 legacy file in 64 (see pkcs12_gpgsm.go); encode again, with
	// new random salts, until no salt hits its bug. 16 tries all fail
	// about once in 2^96.
	for try := 0; try < legacyEncodeTries; try++ {
		p12, err := enc.Encode(key, cert, []*x509.Certificate{issuer}, password)
		if err != nil {
			return nil, err
		}
		bad, err := GpgsmMisderivesPKCS12(p12, password)
		if err != nil {
			return nil, fmt.Errorf("check legacy PKCS#12 for gpgsm: %w", err)
		}
		if !bad {
			return p12, nil
		}
	}
	return nil, fmt.Errorf("legacy PKCS#12: every one of %d encodings has a salt gpgsm 2.2 misderives", legacyEncodeTries)
}

// legacyEncodeTries bounds the re-encodings of a legacy PKCS#12 file.
const legacyEncodeTries = 16

// GeneratePassword makes a PKCS#12 password of 120 bits from the CSPRNG:
// lowercase base32 (no 0/1/8/9 to misread), "xxxx-xxxx-…-xxxx".
func GeneratePassword() (string, error) {
	b := make([]byte, generatedPasswordBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	s := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
	groups := make([]string, 0, len(s)/4)
	for i := 0; i < len(s); i += 4 {
		groups = append(groups, s[i:i+4])
	}
	return strings.Join(groups, "-"), nil
}
