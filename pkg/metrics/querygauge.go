// Package metrics holds the Prometheus helpers the services share beyond
// client_golang: gauges computed at scrape time from a query, with a short
// cache so that frequent scrapes (or several Prometheus servers) cost one
// query per TTL.
package metrics

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/certlife/platform/pkg/clock"
)

// Sample is one series of a QueryGauge: its label values, in the order of
// the gauge's labels, and its value.
type Sample struct {
	Labels []string
	Value  float64
}

// Query computes the samples of a QueryGauge.
type Query func(ctx context.Context) ([]Sample, error)

// QueryGauge is a gauge (or a family of gauges) computed at scrape time.
// A result is kept for TTL; a failed query keeps the last good result
// (logged), so that a slow or absent database shows as stale numbers and
// a log line, never as a failed scrape.
type QueryGauge struct {
	TTL     time.Duration // default 15 s
	Timeout time.Duration // of one query; default 5 s
	Clock   clock.Clock   // default the real clock
	Log     *slog.Logger

	descs []*prometheus.Desc
	query func(ctx context.Context) ([][]Sample, error)

	mu      sync.Mutex
	at      time.Time
	cached  [][]Sample
	queries int
}

// NewQueryGauge is one gauge family whose samples q returns.
func NewQueryGauge(opts prometheus.GaugeOpts, labels []string, q Query) *QueryGauge {
	return NewQueryGauges([]prometheus.GaugeOpts{opts}, [][]string{labels}, func(ctx context.Context) ([][]Sample, error) {
		s, err := q(ctx)
		return [][]Sample{s}, err
	})
}

// NewQueryGauges is several gauge families one query computes together
// (q returns one slice of samples per family, in the order of opts).
func NewQueryGauges(opts []prometheus.GaugeOpts, labels [][]string, q func(ctx context.Context) ([][]Sample, error)) *QueryGauge {
	g := &QueryGauge{query: q}
	for i, o := range opts {
		g.descs = append(g.descs, prometheus.NewDesc(prometheus.BuildFQName(o.Namespace, o.Subsystem, o.Name), o.Help, labels[i], o.ConstLabels))
	}
	return g
}

// Describe implements prometheus.Collector.
func (g *QueryGauge) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range g.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the cached samples, refreshed
// first when older than TTL.
func (g *QueryGauge) Collect(ch chan<- prometheus.Metric) {
	for i, family := range g.samples() {
		if i >= len(g.descs) {
			break
		}
		for _, s := range family {
			m, err := prometheus.NewConstMetric(g.descs[i], prometheus.GaugeValue, s.Value, s.Labels...)
			if err != nil {
				ch <- prometheus.NewInvalidMetric(g.descs[i], err)
				continue
			}
			ch <- m
		}
	}
}

// Queries reports how many queries ran (tests check the cache with it).
func (g *QueryGauge) Queries() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.queries
}

func (g *QueryGauge) samples() [][]Sample {
	// Concurrent scrapes wait for one refresh instead of each querying.
	g.mu.Lock()
	defer g.mu.Unlock()
	clk := g.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	ttl, timeout := g.TTL, g.Timeout
	if ttl <= 0 {
		ttl = 15 * time.Second
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	now := clk.Now()
	if g.cached != nil && now.Sub(g.at) < ttl {
		return g.cached
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	g.queries++
	s, err := g.query(ctx)
	if err != nil {
		if g.Log != nil {
			g.Log.Warn("metrics query failed; serving the last result", "metric", g.descs[0].String(), "err", err)
		}
		return g.cached
	}
	g.cached, g.at = s, now
	return s
}
