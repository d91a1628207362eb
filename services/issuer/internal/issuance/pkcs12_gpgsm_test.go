package issuance

import (
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"os"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// gpgsm-misderived.p12: a LegacyDES file from go-pkcs12 v0.7.4 that
// OpenSSL opens and gpgsm 2.2.40 cannot ("decryption failed; trying
// charset ...", "data error at shrouded_key_bag.decrypted-text").
const misderivedPassword = "gpgsm-legacy-pass"

// decrypt3DES decrypts a PKCS#12 3DES PBE ciphertext with the key and
// IV derived right or as gpgsm does, and checks padding and that the
// plaintext is one DER value.
func decrypt3DES(u pbeUse, password string, gpgsmStep bool) error {
	key := pkcs12KDF(u.salt, password, u.iterations, 1, 24, gpgsmStep)
	iv := pkcs12KDF(u.salt, password, u.iterations, 2, 8, gpgsmStep)
	block, err := des.NewTripleDESCipher(key)
	if err != nil {
		return err
	}
	if len(u.encrypted) == 0 || len(u.encrypted)%8 != 0 {
		return errors.New("ciphertext length")
	}
	pt := make([]byte, len(u.encrypted))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, u.encrypted)
	pad := int(pt[len(pt)-1])
	if pad < 1 || pad > 8 {
		return errors.New("bad padding")
	}
	for _, b := range pt[len(pt)-pad:] {
		if int(b) != pad {
			return errors.New("bad padding")
		}
	}
	var v asn1.RawValue
	rest, err := asn1.Unmarshal(pt[:len(pt)-pad], &v)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return errors.New("trailing data")
	}
	return nil
}

// IS-8: the check finds the salt gpgsm 2.2 misderives in the sample
// gpgsm refused, and the KDF model explains the refusal: the right key
// decrypts every part, gpgsm's key does not decrypt the part it names.
func TestGpgsmMisderivedPKCS12Flagged_IS8(t *testing.T) {
	der, err := os.ReadFile("testdata/gpgsm-misderived.p12")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := pkcs12.DecodeChain(der, misderivedPassword); err != nil {
		t.Fatalf("go-pkcs12 cannot read the sample: %v", err)
	}
	bad, err := GpgsmMisderivesPKCS12(der, misderivedPassword)
	if err != nil || !bad {
		t.Fatalf("GpgsmMisderivesPKCS12 = %v, %v; want true", bad, err)
	}
	uses, err := pkcs12PBEUses(der)
	if err != nil {
		t.Fatal(err)
	}
	if len(uses) != 2 {
		t.Fatalf("%d PBE uses, want 2 (certificates, key)", len(uses))
	}
	// uses[0] is the encrypted certificate SafeContents, uses[1] the
	// shrouded key bag. In this sample the certificates' salt is hit:
	// gpgsm says "752 bytes of 3DES encrypted text", "decryption failed;
	// trying charset ..." and "encryptedData error at outer.outer.seq".
	// (When the key bag's salt is hit it says "data error at
	// shrouded_key_bag.decrypted-text".)
	for i, u := range uses {
		if u.keyLen != 24 || u.iterations != 2048 || len(u.salt) != 8 {
			t.Fatalf("use %d: key %d, iterations %d, salt %d bytes", i, u.keyLen, u.iterations, len(u.salt))
		}
		if err := decrypt3DES(u, misderivedPassword, false); err != nil {
			t.Fatalf("use %d with the RFC 7292 key: %v", i, err)
		}
		err := decrypt3DES(u, misderivedPassword, true)
		if i == 0 && err == nil {
			t.Errorf("the certificates decrypt with gpgsm's key")
		}
		if i == 1 && err != nil {
			t.Errorf("the key bag does not decrypt with gpgsm's key: %v", err)
		}
	}
	// With another password the same salts are fine.
	if bad, err := GpgsmMisderivesPKCS12(der, "another-password"); err != nil || bad {
		t.Fatalf("another password: %v, %v; want false", bad, err)
	}
}

// The faulty step hits about 1 salt in 128 (a leading zero byte in one
// of two 64-byte blocks); iterations do not change the rate, so 1 keeps
// this fast. 4000 salts: expected about 31, the bounds are > 5 sigma.
func TestGpgsmMisderivationRate_IS8(t *testing.T) {
	hits := 0
	salt := make([]byte, 8)
	for i := 0; i < 4000; i++ {
		if _, err := rand.Read(salt); err != nil {
			t.Fatal(err)
		}
		right := pkcs12KDF(salt, misderivedPassword, 1, 1, 24, false)
		gpgsm := pkcs12KDF(salt, misderivedPassword, 1, 1, 24, true)
		if string(right) != string(gpgsm) {
			hits++
		}
		if string(right[:20]) != string(gpgsm[:20]) {
			t.Fatal("the first SHA-1 block never differs")
		}
	}
	if hits < 5 || hits > 80 {
		t.Fatalf("%d of 4000 salts misderived, want about 31", hits)
	}
}

func testKeyAndCerts(t *testing.T) (*rsa.PrivateKey, *x509.Certificate, *x509.Certificate) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t"}, NotBefore: now, NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert, cert
}

// IS-8: every legacy file EncodePKCS12 makes passes the check, reads
// back, and its parts decrypt with the key gpgsm derives.
func TestLegacyPKCS12AvoidsGpgsmMisderivation_IS8(t *testing.T) {
	key, cert, issuer := testKeyAndCerts(t)
	for i := 0; i < 100; i++ {
		pw := "legacy-password-" + string(rune('a'+i%26))
		der, err := EncodePKCS12(PKCS12Legacy, key, cert, issuer, pw)
		if err != nil {
			t.Fatal(err)
		}
		if bad, err := GpgsmMisderivesPKCS12(der, pw); err != nil || bad {
			t.Fatalf("encoding %d: %v, %v", i, bad, err)
		}
		uses, err := pkcs12PBEUses(der)
		if err != nil || len(uses) != 2 {
			t.Fatalf("encoding %d: %d uses, %v", i, len(uses), err)
		}
		for _, u := range uses {
			if err := decrypt3DES(u, pw, true); err != nil {
				t.Fatalf("encoding %d: gpgsm's key: %v", i, err)
			}
		}
	}
	// The modern profile (PBES2) has no PKCS#12 PBE to check.
	der, err := EncodePKCS12(PKCS12Modern, key, cert, issuer, "modern-password")
	if err != nil {
		t.Fatal(err)
	}
	if uses, err := pkcs12PBEUses(der); err != nil || len(uses) != 0 {
		t.Fatalf("modern: %d uses, %v", len(uses), err)
	}
}
