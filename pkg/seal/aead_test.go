package seal

import (
	"bytes"
	"testing"
)

// SE-1: what a service keeps sealed opens only with its key and context.
func TestAEADOpensOnlyWithKeyAndContext_SE1(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	sealed, err := SealAEAD(key, []byte("secret"), []byte("ctx"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("secret")) {
		t.Fatal("plaintext in the sealed data")
	}
	if got, err := OpenAEAD(key, sealed, []byte("ctx")); err != nil || string(got) != "secret" {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := OpenAEAD(key, sealed, []byte("other")); err == nil {
		t.Fatal("opened in another context")
	}
	if _, err := OpenAEAD(bytes.Repeat([]byte{8}, 32), sealed, []byte("ctx")); err == nil {
		t.Fatal("opened with another key")
	}
	if _, err := OpenAEAD(key, sealed[:5], []byte("ctx")); err == nil {
		t.Fatal("opened a truncated value")
	}
	again, _ := SealAEAD(key, []byte("secret"), []byte("ctx"))
	if bytes.Equal(again, sealed) {
		t.Fatal("the same nonce twice")
	}
}
