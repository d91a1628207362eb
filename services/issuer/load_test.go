package issuer_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/events"
)

// PC-13 under load: an issuance holds its locked row and commits the
// serial on a second connection (IS-2); many retrievals at once must not
// exhaust the connection pool and hang.
func TestManyConcurrentRetrievalsComplete_PC13_IS2(t *testing.T) {
	e := start(t, nil)
	tok := e.session("applicant-r")
	const n = 16
	apps := make([]events.Application, n)
	for i := range apps {
		apps[i] = application("applicant-r", events.KindNew, "", "")
		e.Publish(events.ReviewApproved{ReviewID: uuid.NewString(), Application: apps[i], Reviewer: "auto"}, apps[i].ID)
	}
	ids := make([]string, n)
	for i, a := range apps {
		ready := e.WaitEvent(events.TypeCertificateReady, a.ID, wait)
		p, _ := events.Decode[events.CertificateReady](ready)
		ids[i] = p.CertificateID
	}
	client := &http.Client{Timeout: 20 * time.Second}
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for _, id := range ids {
		body, _ := json.Marshal(map[string]any{"accept_terms": true, "csr": csrPEM(t, newKey(t))})
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", e.Server.URL+"/v1/certificates/"+id+"/retrieval", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				errs <- resp.Status
			}
		}()
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Fatalf("concurrent retrieval: %s", msg)
	}
	if c := e.count(`SELECT count(*) FROM certificates WHERE status = 'issued'`); c != n {
		t.Fatalf("%d of %d issued", c, n)
	}
}
