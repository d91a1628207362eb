package ca

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// ErrKeyPermissions: a private key file is readable by group or others
// (SE-2). The service refuses to start rather than use it.
var ErrKeyPermissions = errors.New("ca: private key file must not be accessible by group or others (chmod 0600)")

// checkKeyFile refuses a key file that group or others can access.
func checkKeyFile(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("ca: %s is not a regular file", path)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %04o", ErrKeyPermissions, path, info.Mode().Perm())
	}
	return nil
}

// readKeyFile reads a file that holds a secret, after checking its mode.
func readKeyFile(path string) ([]byte, error) {
	if err := checkKeyFile(path); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}

// loadSigner reads a PKCS#8 PEM private key from a 0600 file.
func loadSigner(path string) (crypto.Signer, error) {
	raw, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "PRIVATE KEY" {
		// The file's content is never echoed: it is a key.
		return nil, fmt.Errorf("ca: %s does not hold a PKCS#8 PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ca: %s: cannot parse the private key", path)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("ca: %s: key type %T cannot sign", path, k)
	}
	return s, nil
}

func loadCertificate(path string) (*x509.Certificate, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("ca: %s does not hold a PEM certificate", path)
	}
	return x509.ParseCertificate(block.Bytes)
}

// writeNew creates path with mode and content; it never overwrites a file.
func writeNew(path string, mode fs.FileMode, content []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// The umask may have removed bits but never adds any; make the mode exact.
	return os.Chmod(path, mode)
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, err
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func pemKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
