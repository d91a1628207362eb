package ca

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Sealer encrypts small blobs (PKCS#12 files waiting for download) at rest
// with AES-256-GCM under the data key of the CA directory. The associated
// data binds a ciphertext to its row, so a blob moved to another
// certificate does not open.
type Sealer struct{ aead cipher.AEAD }

func createDataKey(path string) error {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	enc := base64.StdEncoding.EncodeToString(key) + "\n"
	if err := writeNew(path, 0o600, []byte(enc)); err != nil {
		return fmt.Errorf("ca: write data key: %w", err)
	}
	return nil
}

func loadSealer(path string) (*Sealer, error) {
	raw, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("ca: %s must hold 32 bytes in base64", path)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext; the result is nonce || ciphertext.
func (s *Sealer) Seal(plaintext, associated []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.aead.Seal(nonce, nonce, plaintext, associated), nil
}

// Open reverses Seal.
func (s *Sealer) Open(sealed, associated []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("ca: sealed blob too short")
	}
	out, err := s.aead.Open(nil, sealed[:n], sealed[n:], associated)
	if err != nil {
		return nil, errors.New("ca: sealed blob does not open (wrong data key or tampered)")
	}
	return out, nil
}
