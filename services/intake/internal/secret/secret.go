// Package secret makes and checks the applicant's secrets: argon2id hashes
// of passwords and certificate codes (SE-1), certificate codes of 100 bits
// (PC-7), and session tokens.
package secret

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters: OWASP's minimum (19 MiB, 2 passes, 1 lane). Each
// hash costs ~20-40 ms here, which bounds guessing without starving the API.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// Hash returns the PHC-format argon2id hash of s.
func Hash(s string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(s), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// Verify reports whether s matches the PHC hash.
func Verify(hash, s string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil {
		return false
	}
	got := argon2.IDKey([]byte(s), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummy is verified against when no account matches, so that a wrong
// e-mail costs as much time as a wrong password (PC-7: no hint).
var dummy, _ = Hash("no such applicant")

// BurnTime does the work of one failed Verify.
func BurnTime() { Verify(dummy, "x") }

// codeAlphabet is Crockford's base32: no I, L, O, U to misread.
const codeAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// CodeBits is the entropy of a certificate code (SE-1 asks ≥ 80).
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

// NewToken returns a session token (256 bits) and its SHA-256, which is
// all that is stored: a token has too much entropy to need argon2.
func NewToken() (token string, hash []byte, err error) {
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", nil, err
	}
	token = base64.RawURLEncoding.EncodeToString(buf)
	return token, TokenHash(token), nil
}

// TokenHash is the stored form of a session token.
func TokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// ErrMismatch is the one answer to any wrong credential.
var ErrMismatch = errors.New("the e-mail address, password or certificate code is not correct")
