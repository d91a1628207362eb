package metrics_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/metrics"
)

// OP-3: a scrape-time gauge queries at most once per TTL (by the injected
// clock), and a failed query serves the last good result instead of
// failing the scrape.
func TestQueryGaugeCachesAndKeepsLastResult_OP3(t *testing.T) {
	clk := clock.NewOffset()
	value, fail := 1.0, false
	g := metrics.NewQueryGauge(prometheus.GaugeOpts{Name: "things", Help: "Things."}, []string{"kind"},
		func(context.Context) ([]metrics.Sample, error) {
			if fail {
				return nil, errors.New("database away")
			}
			return []metrics.Sample{{Labels: []string{"a"}, Value: value}}, nil
		})
	g.TTL, g.Clock = time.Minute, clk
	reg := prometheus.NewRegistry()
	reg.MustRegister(g)
	want := func(v string) {
		t.Helper()
		exp := "# HELP things Things.\n# TYPE things gauge\nthings{kind=\"a\"} " + v + "\n"
		if err := testutil.GatherAndCompare(reg, strings.NewReader(exp), "things"); err != nil {
			t.Fatal(err)
		}
	}
	want("1")
	value = 2
	want("1") // cached
	if g.Queries() != 1 {
		t.Fatalf("%d queries within the TTL", g.Queries())
	}
	if err := clk.Advance(time.Minute); err != nil {
		t.Fatal(err)
	}
	want("2")
	fail = true
	if err := clk.Advance(time.Minute); err != nil {
		t.Fatal(err)
	}
	want("2") // the last good result
	if g.Queries() != 3 {
		t.Fatalf("%d queries, want 3", g.Queries())
	}
}
