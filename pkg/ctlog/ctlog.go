// Package ctlog is a small RFC 6962 Certificate Transparency log: enough of
// one (add-chain, add-pre-chain, get-sth) to issue Signed Certificate
// Timestamps that real verifiers accept. The all-in-one runs two of them
// on loopback as its dev logs (CT_LOGS default, IS-9) and tests run them
// to prove issuance embeds valid SCTs. It keeps no Merkle tree: an SCT is
// a promise to log, and this log is never audited.
package ctlog

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
)

// Log is one CT log.
type Log struct {
	Name  string
	key   *ecdsa.PrivateKey
	id    [sha256.Size]byte
	now   func() time.Time
	fail  atomic.Int32 // HTTP status to answer with instead of an SCT; 0 = work
	mu    sync.Mutex
	count int
}

// New is a log with a fresh P-256 key.
func New(name string) (*Log, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return FromKey(name, k)
}

// FromKey is a log with the given key.
func FromKey(name string, k *ecdsa.PrivateKey) (*Log, error) {
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return nil, err
	}
	return &Log{Name: name, key: k, id: sha256.Sum256(der), now: time.Now}, nil
}

// LoadOrCreate keeps the log's key in path (PKCS#8 PEM, mode 0600), so a
// log keeps its identity across restarts and old SCTs stay verifiable.
func LoadOrCreate(name, path string) (*Log, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		l, err := New(name)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(l.key)
		if err != nil {
			return nil, err
		}
		return l, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	}
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, fmt.Errorf("ctlog: %s holds no PEM key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("ctlog: %s is not an ECDSA key", path)
	}
	return FromKey(name, ek)
}

// SetClock makes the log stamp its SCTs and tree heads with now()
// instead of the wall clock: the all-in-one and tests give it the
// platform's injected clock, so that SCTs agree with the notBefore of
// the certificates they are for. Call it before the log serves.
func (l *Log) SetClock(now func() time.Time) { l.now = now }

// PublicKey is the log's verification key.
func (l *Log) PublicKey() crypto.PublicKey { return &l.key.PublicKey }

// PublicKeyBase64 is the DER SubjectPublicKeyInfo in base64, as CT_LOGS
// and log lists give it.
func (l *Log) PublicKeyBase64() string {
	der, _ := x509.MarshalPKIXPublicKey(&l.key.PublicKey)
	return base64.StdEncoding.EncodeToString(der)
}

// ID is the log ID (SHA-256 of the public key).
func (l *Log) ID() [sha256.Size]byte { return l.id }

// SetFailing makes the log answer every submission with status (e.g. 503),
// or work again with 0: tests use it to prove a failing log is replaced.
func (l *Log) SetFailing(status int) { l.fail.Store(int32(status)) }

// Submissions is how many SCTs the log has issued.
func (l *Log) Submissions() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.count
}

// Handler serves /ct/v1/add-chain, /ct/v1/add-pre-chain and /ct/v1/get-sth.
func (l *Log) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /ct/v1/add-chain", func(w http.ResponseWriter, r *http.Request) { l.add(w, r, ct.X509LogEntryType) })
	mux.HandleFunc("POST /ct/v1/add-pre-chain", func(w http.ResponseWriter, r *http.Request) { l.add(w, r, ct.PrecertLogEntryType) })
	mux.HandleFunc("GET /ct/v1/get-sth", l.sth)
	return mux
}

func (l *Log) add(w http.ResponseWriter, r *http.Request, etype ct.LogEntryType) {
	if s := l.fail.Load(); s != 0 {
		http.Error(w, "log unavailable (test)", int(s))
		return
	}
	var req ct.AddChainRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || len(req.Chain) < 2 {
		http.Error(w, "want {\"chain\": [leaf, issuer, …]} in base64 DER", http.StatusBadRequest)
		return
	}
	chain := make([]*ctx509.Certificate, len(req.Chain))
	for i, der := range req.Chain {
		c, err := ctx509.ParseCertificate(der)
		if err != nil && ctx509.IsFatal(err) {
			http.Error(w, fmt.Sprintf("chain[%d]: %v", i, err), http.StatusBadRequest)
			return
		}
		chain[i] = c
	}
	if err := chain[0].CheckSignatureFrom(chain[1]); err != nil {
		http.Error(w, "chain[0] is not signed by chain[1]: "+err.Error(), http.StatusBadRequest)
		return
	}
	poisoned := false
	for _, ext := range chain[0].Extensions {
		if ext.Id.Equal(ctx509.OIDExtensionCTPoison) {
			poisoned = true
		}
	}
	if poisoned != (etype == ct.PrecertLogEntryType) {
		http.Error(w, "add-pre-chain takes precertificates (with the poison extension) and add-chain certificates", http.StatusBadRequest)
		return
	}
	ts := uint64(l.now().UnixMilli())
	leaf, err := ct.MerkleTreeLeafFromChain(chain, etype, ts)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	sct := ct.SignedCertificateTimestamp{SCTVersion: ct.V1, LogID: ct.LogID{KeyID: l.id}, Timestamp: ts}
	input, err := ct.SerializeSCTSignatureInput(sct, ct.LogEntry{Leaf: *leaf})
	if err != nil {
		http.Error(w, "ctlog: "+err.Error(), http.StatusInternalServerError)
		return
	}
	sig, err := cttls.CreateSignature(*l.key, cttls.SHA256, input) // the library takes the key by value
	if err != nil {
		http.Error(w, "ctlog: "+err.Error(), http.StatusInternalServerError)
		return
	}
	rawSig, err := cttls.Marshal(sig)
	if err != nil {
		http.Error(w, "ctlog: "+err.Error(), http.StatusInternalServerError)
		return
	}
	l.mu.Lock()
	l.count++
	l.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(ct.AddChainResponse{SCTVersion: ct.V1, ID: l.id[:], Timestamp: ts, Signature: rawSig})
}

// sth answers a signed tree head of the empty tree: enough for clients
// that look at the log before submitting.
func (l *Log) sth(w http.ResponseWriter, _ *http.Request) {
	empty := sha256.Sum256(nil)
	sth := ct.SignedTreeHead{Version: ct.V1, TreeSize: 0, Timestamp: uint64(l.now().UnixMilli()), SHA256RootHash: ct.SHA256Hash(empty)}
	input, err := ct.SerializeSTHSignatureInput(sth)
	var ds cttls.DigitallySigned
	if err == nil {
		ds, err = cttls.CreateSignature(*l.key, cttls.SHA256, input)
	}
	if err != nil {
		http.Error(w, "ctlog: "+err.Error(), http.StatusInternalServerError)
		return
	}
	sig, _ := cttls.Marshal(ds)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(ct.GetSTHResponse{TreeSize: 0, Timestamp: sth.Timestamp, SHA256RootHash: empty[:], TreeHeadSignature: sig})
}
