package issuance

import (
	"bytes"
	"crypto/sha1"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"unicode/utf16"
)

// gpgsm (GnuPG 2.2 up to at least 2.2.48 and master; Debian 12 ships
// 2.2.40) derives the PKCS#12 PBE key wrongly for some salts, and then
// cannot import a valid file ("decryption failed; trying charset ...",
// "data error at shrouded_key_bag.decrypted-text"). The bug is in
// string_to_key() of sm/minip12.c, in the RFC 7292 B.2 step 6C
// "Ij = (Ij + B + 1) mod 2^512", which runs when more than one SHA-1
// block of key is needed (the 24-byte 3DES key, not the 8-byte IV or the
// 20-byte MAC key):
//
//	gcry_mpi_add (num_ij, num_ij, num_b1);
//	gcry_mpi_clear_highbit (num_ij, 64*8);
//	rc = gcry_mpi_print (GCRYMPI_FMT_USG, buf_i + i, 64, &n, num_ij);
//
// gcry_mpi_print with GCRYMPI_FMT_USG writes the minimal big-endian form
// (n bytes, no leading zeros) at the START of the 64-byte buffer and
// ignores n. When the sum mod 2^512 is below 2^504 (its first byte is 0,
// about 1 in 256 per I-block, 2 I-blocks per key, 2 keys per legacy file
// = about 1 in 64 files) the new Ij is shifted left and its tail keeps
// old bytes, so key bytes 21..24 come out wrong. OpenSSL and Windows are
// right; the file is valid. An issued legacy file must still import in
// gpgsm 2.2 (IS-8 names it), so EncodePKCS12 re-encodes (fresh random
// salts) any legacy file whose salts hit the bug.

var (
	oidDataContent          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidEncryptedDataContent = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}
	oidPKCS8ShroudedKeyBag  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidSafeContentsBag      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 6}
)

// pbeKeyLen: the key length of each PKCS#12 PBE scheme (RFC 7292 C);
// only those longer than one SHA-1 block (20 bytes) reach the faulty step.
// PBES2 (the modern profile) uses PBKDF2 and is not affected.
var pbeKeyLen = map[string]int{
	"1.2.840.113549.1.12.1.1": 16, // RC4-128
	"1.2.840.113549.1.12.1.2": 5,  // RC4-40
	"1.2.840.113549.1.12.1.3": 24, // 3-key 3DES-CBC
	"1.2.840.113549.1.12.1.4": 16, // 2-key 3DES-CBC
	"1.2.840.113549.1.12.1.5": 16, // RC2-128-CBC
	"1.2.840.113549.1.12.1.6": 5,  // RC2-40-CBC
}

type p12ContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
}

type p12PFX struct {
	Version  int
	AuthSafe p12ContentInfo
	MacData  asn1.RawValue `asn1:"optional"`
}

type p12AlgorithmIdentifier struct {
	Algorithm  asn1.ObjectIdentifier
	Parameters asn1.RawValue `asn1:"optional"`
}

type p12PBEParams struct {
	Salt       []byte
	Iterations int
}

type p12EncryptedData struct {
	Version              int
	EncryptedContentInfo struct {
		ContentType                asn1.ObjectIdentifier
		ContentEncryptionAlgorithm p12AlgorithmIdentifier
		EncryptedContent           asn1.RawValue `asn1:"tag:0,optional"`
	}
}

type p12SafeBag struct {
	ID         asn1.ObjectIdentifier
	Value      asn1.RawValue `asn1:"tag:0,explicit"`
	Attributes asn1.RawValue `asn1:"optional"`
}

type p12EncryptedPrivateKeyInfo struct {
	Algorithm     p12AlgorithmIdentifier
	EncryptedData []byte
}

// pbeUse is one PKCS#12 PBE encryption in a file: its algorithm's key
// length, salt and iteration count.
type pbeUse struct {
	keyLen     int
	salt       []byte
	iterations int
	encrypted  []byte // the ciphertext (for tests)
}

// pkcs12PBEUses lists the PKCS#12 PBE encryptions of a PFX: encrypted
// SafeContents (the certificates) and shrouded key bags, also inside
// nested SafeContents bags.
func pkcs12PBEUses(pfxDER []byte) ([]pbeUse, error) {
	var pfx p12PFX
	if _, err := asn1.Unmarshal(pfxDER, &pfx); err != nil {
		return nil, fmt.Errorf("PFX: %w", err)
	}
	if !pfx.AuthSafe.ContentType.Equal(oidDataContent) {
		return nil, errors.New("PFX: authSafe is not data")
	}
	var authSafeOctets []byte
	if _, err := asn1.Unmarshal(pfx.AuthSafe.Content.Bytes, &authSafeOctets); err != nil {
		return nil, fmt.Errorf("PFX authSafe: %w", err)
	}
	var cis []p12ContentInfo
	if _, err := asn1.Unmarshal(authSafeOctets, &cis); err != nil {
		return nil, fmt.Errorf("AuthenticatedSafe: %w", err)
	}
	var uses []pbeUse
	for _, ci := range cis {
		switch {
		case ci.ContentType.Equal(oidDataContent):
			var safe []byte
			if _, err := asn1.Unmarshal(ci.Content.Bytes, &safe); err != nil {
				return nil, fmt.Errorf("data SafeContents: %w", err)
			}
			u, err := safeContentsPBEUses(safe, 0)
			if err != nil {
				return nil, err
			}
			uses = append(uses, u...)
		case ci.ContentType.Equal(oidEncryptedDataContent):
			var ed p12EncryptedData
			if _, err := asn1.Unmarshal(ci.Content.Bytes, &ed); err != nil {
				return nil, fmt.Errorf("EncryptedData: %w", err)
			}
			u, err := pbeUseOf(ed.EncryptedContentInfo.ContentEncryptionAlgorithm)
			if err != nil {
				return nil, err
			}
			if u != nil {
				u.encrypted = ed.EncryptedContentInfo.EncryptedContent.Bytes
				uses = append(uses, *u)
			}
		}
	}
	return uses, nil
}

func safeContentsPBEUses(der []byte, depth int) ([]pbeUse, error) {
	if depth > 4 {
		return nil, errors.New("SafeContents nested too deep")
	}
	var bags []p12SafeBag
	if _, err := asn1.Unmarshal(der, &bags); err != nil {
		return nil, fmt.Errorf("SafeContents: %w", err)
	}
	var uses []pbeUse
	for _, bag := range bags {
		switch {
		case bag.ID.Equal(oidPKCS8ShroudedKeyBag):
			var epki p12EncryptedPrivateKeyInfo
			if _, err := asn1.Unmarshal(bag.Value.Bytes, &epki); err != nil {
				return nil, fmt.Errorf("shrouded key bag: %w", err)
			}
			u, err := pbeUseOf(epki.Algorithm)
			if err != nil {
				return nil, err
			}
			if u != nil {
				u.encrypted = epki.EncryptedData
				uses = append(uses, *u)
			}
		case bag.ID.Equal(oidSafeContentsBag):
			u, err := safeContentsPBEUses(bag.Value.FullBytes, depth+1)
			if err != nil {
				return nil, err
			}
			uses = append(uses, u...)
		}
	}
	return uses, nil
}

// pbeUseOf: nil for a scheme that is not a PKCS#12 PBE (PBES2).
func pbeUseOf(alg p12AlgorithmIdentifier) (*pbeUse, error) {
	n, ok := pbeKeyLen[alg.Algorithm.String()]
	if !ok {
		return nil, nil
	}
	var p p12PBEParams
	if _, err := asn1.Unmarshal(alg.Parameters.FullBytes, &p); err != nil {
		return nil, fmt.Errorf("PBE parameters: %w", err)
	}
	return &pbeUse{keyLen: n, salt: p.Salt, iterations: p.Iterations}, nil
}

// GpgsmMisderivesPKCS12 reports whether gpgsm 2.2 would derive a wrong
// key for any PBE encryption in the PKCS#12 file pfxDER made with
// password (see the comment at the top of this file).
func GpgsmMisderivesPKCS12(pfxDER []byte, password string) (bool, error) {
	uses, err := pkcs12PBEUses(pfxDER)
	if err != nil {
		return false, err
	}
	for _, u := range uses {
		if u.keyLen <= sha1.Size || len(u.salt) == 0 || u.iterations < 1 || u.iterations > 1<<20 {
			continue // one SHA-1 block: the faulty step is not reached
		}
		right := pkcs12KDF(u.salt, password, u.iterations, 1, u.keyLen, false)
		gpgsm := pkcs12KDF(u.salt, password, u.iterations, 1, u.keyLen, true)
		if !bytes.Equal(right, gpgsm) {
			return true, nil
		}
	}
	return false, nil
}

// pkcs12KDF is RFC 7292 Appendix B.2 with SHA-1 (u = 20, v = 64 bytes)
// for the BMPString password with its two zero bytes at the end, as
// go-pkcs12 encodes it. gpgsmStep: do step 6C as gpgsm's string_to_key
// does (the new Ij written at the start of its block, without leading
// zero bytes, over the old bytes).
func pkcs12KDF(salt []byte, password string, iterations int, id byte, size int, gpgsmStep bool) []byte {
	const u, v = sha1.Size, 64
	pw := make([]byte, 0, 2*len(password)+2)
	for _, r := range utf16.Encode([]rune(password)) {
		pw = append(pw, byte(r>>8), byte(r))
	}
	pw = append(pw, 0, 0)
	fill := func(p []byte) []byte {
		if len(p) == 0 {
			return nil
		}
		n := v * ((len(p) + v - 1) / v)
		return bytes.Repeat(p, (n+len(p)-1)/len(p))[:n]
	}
	I := append(fill(salt), fill(pw)...)
	D := bytes.Repeat([]byte{id}, v)
	mod := new(big.Int).Lsh(big.NewInt(1), 8*v)
	var out []byte
	for {
		h := sha1.New()
		h.Write(D)
		h.Write(I)
		A := h.Sum(nil)
		for i := 1; i < iterations; i++ {
			s := sha1.Sum(A)
			A = s[:]
		}
		out = append(out, A...)
		if len(out) >= size {
			return out[:size]
		}
		B := new(big.Int).SetBytes(fill(A)[:v])
		B.Add(B, big.NewInt(1))
		for j := 0; j+v <= len(I); j += v {
			Ij := new(big.Int).SetBytes(I[j : j+v])
			Ij.Add(Ij, B).Mod(Ij, mod)
			if gpgsmStep {
				copy(I[j:j+v], Ij.Bytes()) // left-aligned, the tail stays
			} else {
				Ij.FillBytes(I[j : j+v])
			}
		}
	}
}
