package domain

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/certlife/platform/pkg/errs"
)

// Argon2id parameters for application passwords: OWASP's minimum (19 MiB,
// 2 passes, 1 lane). Each hash costs ~20-40 ms here; the number run at
// once is bounded by the caller (ARGON2_CONCURRENCY, SE-7).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// HashPassword returns the PHC-format argon2id hash of s (SE-1).
func HashPassword(s string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(s), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// VerifyPassword reports whether s matches the PHC hash. A hash that
// cannot be parsed still costs one argon2id evaluation (with the dummy's
// parameters), so that no input takes a shortcut.
func VerifyPassword(hash, s string) bool {
	salt, want, t, m, p, ok := parsePHC(hash)
	if !ok {
		salt, want, t, m, p, _ = parsePHC(DummyHash)
	}
	got := argon2.IDKey([]byte(s), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1 && ok
}

func parsePHC(hash string) (salt, key []byte, t, m uint32, p uint8, ok bool) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return nil, nil, 0, 0, 0, false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || t == 0 || p == 0 {
		return nil, nil, 0, 0, 0, false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(key) == 0 {
		return nil, nil, 0, 0, 0, false
	}
	return salt, key, t, m, p, true
}

// DummyHash is verified against when no account matches the e-mail or
// the code, so that every mismatch costs one argon2id evaluation with the
// same parameters as a real one (PC-7, SE-7: no timing hint).
var DummyHash = mustHash("no such applicant")

func mustHash(s string) string {
	h, err := HashPassword(s)
	if err != nil {
		panic(err)
	}
	return h
}

// codeAlphabet is Crockford's base32: no I, L, O, U to misread.
const codeAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// CodeBits is the entropy of a certificate code (SE-1, SE-7 ask ≥ 100).
const CodeBits = 100

// NewCode returns a certificate code: 20 base32 characters (100 bits) in
// groups of four, e.g. "7K3Q-…".
func NewCode() (string, error) {
	buf := make([]byte, 20)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	var b strings.Builder
	for i, c := range buf {
		if i > 0 && i%4 == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(codeAlphabet[c&31])
	}
	return b.String(), nil
}

// NormalizeCode accepts what a person types: any case, with or without
// hyphens and spaces, and O/I/L for 0/1/1.
func NormalizeCode(s string) string {
	r := strings.NewReplacer("-", "", " ", "", "O", "0", "I", "1", "L", "1")
	return r.Replace(strings.ToUpper(strings.TrimSpace(s)))
}

// CodeKey is the server key of the certificate-code HMAC (SE-7). It lives
// in a file (CODE_HMAC_KEY_FILE), never in the database: a stolen
// database alone does not let anyone test guesses of a code.
type CodeKey []byte

// MinCodeKey is the shortest acceptable key, in bytes.
const MinCodeKey = 32

// MAC is the stored form of a certificate code: HMAC-SHA256 of the
// normalized code. A code has 100 random bits, so a fast keyed hash is
// enough; argon2id would only spend CPU.
func (k CodeKey) MAC(code string) []byte {
	m := hmac.New(sha256.New, k)
	m.Write([]byte("certlife certificate code v1\x00"))
	m.Write([]byte(NormalizeCode(code)))
	return m.Sum(nil)
}

// SameMAC compares two MACs in constant time.
func SameMAC(a, b []byte) bool { return len(a) == sha256.Size && hmac.Equal(a, b) }

// ErrMismatch is the one answer to any wrong credential (PC-7): no hint
// which of e-mail, password or code was wrong.
func ErrMismatch() error {
	return errs.Unauthorized("the e-mail address, password or certificate code is not correct")
}
