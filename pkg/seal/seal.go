// Package seal carries a secret from one service to another through the
// outbox and JetStream without either ever holding it in plaintext
// (SE-1): the sender seals it to the recipient's X25519 public key (NaCl
// anonymous box); only the recipient's private key, read from a 0600
// file, opens it.
package seal

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/crypto/nacl/box"
)

// PublicKey seals; PrivateKey opens.
type (
	PublicKey  [32]byte
	PrivateKey struct{ pub, priv [32]byte }
)

// Seal encrypts msg for pub.
func Seal(pub PublicKey, msg []byte) ([]byte, error) {
	k := [32]byte(pub)
	return box.SealAnonymous(nil, msg, &k, rand.Reader)
}

// Open decrypts a sealed message.
func (k *PrivateKey) Open(sealed []byte) ([]byte, error) {
	out, ok := box.OpenAnonymous(nil, sealed, &k.pub, &k.priv)
	if !ok {
		return nil, errors.New("seal: cannot open (wrong key or tampered)")
	}
	return out, nil
}

// Public returns the public half.
func (k *PrivateKey) Public() PublicKey { return PublicKey(k.pub) }

// String is the base64 form used in NOTIFIER_PUBLIC_KEY.
func (p PublicKey) String() string { return base64.StdEncoding.EncodeToString(p[:]) }

// ParsePublicKey reads the base64 form.
func ParsePublicKey(s string) (PublicKey, error) {
	var p PublicKey
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 32 {
		return p, errors.New("seal: a public key is 32 bytes in base64")
	}
	copy(p[:], b)
	return p, nil
}

// Generate makes a new key pair.
func Generate() (*PrivateKey, error) {
	pub, priv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return &PrivateKey{pub: *pub, priv: *priv}, nil
}

// LoadOrCreate reads the private key file (refusing one readable by
// others, SE-2) or, when create is set and it does not exist, writes a new
// one with mode 0600.
func LoadOrCreate(path string, create bool) (*PrivateKey, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) && create {
		k, err := Generate()
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		buf := append(append([]byte{}, k.priv[:]...), k.pub[:]...)
		if err := os.WriteFile(path, buf, 0o600); err != nil {
			return nil, err
		}
		return k, nil
	}
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("seal: %s must not be readable by group or others (chmod 600)", path)
	}
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(buf) != 64 {
		return nil, fmt.Errorf("seal: %s is not a key file", path)
	}
	k := &PrivateKey{}
	copy(k.priv[:], buf[:32])
	copy(k.pub[:], buf[32:])
	return k, nil
}
