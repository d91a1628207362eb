package issuance

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/metrics"
	"github.com/certlife/platform/services/issuer/internal/store"
)

// ExpiryWindows are the windows of certificates_expiring, in days (OP-3).
var ExpiryWindows = []int{30, 60, 90}

// Collector is the issuer's scrape-time figures (OP-3), read from the
// database by the service's clock and cached for a few seconds:
//   - certificates_expiring{product,days,renewed}: valid certificates
//     expiring within 30, 60 and 90 days, by whether a renewal follows
//     them (every product × window × renewed exists, at zero if need be);
//   - crl_age_seconds{issuer}: since thisUpdate of the newest CRL;
//   - crl_time_to_next_update_seconds{issuer}: until its nextUpdate
//     (negative once past).
func (s *Service) Collector() *metrics.QueryGauge {
	g := metrics.NewQueryGauges([]prometheus.GaugeOpts{
		{Name: "certificates_expiring", Help: "Valid certificates expiring within days (30, 60, 90), by product and whether a renewal certificate follows them."},
		{Name: "crl_age_seconds", Help: "Seconds since thisUpdate of the issuing CA's newest CRL (IS-7: a new one at least every 4 days)."},
		{Name: "crl_time_to_next_update_seconds", Help: "Seconds until nextUpdate of the issuing CA's newest CRL (negative once past)."},
	}, [][]string{{"product", "days", "renewed"}, {"issuer"}, {"issuer"}}, s.collect)
	g.TTL, g.Log, g.Clock = 15*time.Second, s.Log, s.Clock
	return g
}

func (s *Service) collect(ctx context.Context) ([][]metrics.Sample, error) {
	now := s.Clock.Now()
	windows := make([]time.Duration, len(ExpiryWindows))
	for i, d := range ExpiryWindows {
		windows[i] = time.Duration(d) * 24 * time.Hour
	}
	expiring, err := store.CountExpiring(ctx, s.Pool, now, windows)
	if err != nil {
		return nil, err
	}
	crls, err := store.NewestCRLs(ctx, s.Pool)
	if err != nil {
		return nil, err
	}
	type key struct {
		product string
		renewed bool
	}
	counts := map[key][]int64{}
	products := []string{events.ProductClient, events.ProductServer}
	for _, e := range expiring {
		if !slices.Contains(products, e.Product) {
			products = append(products, e.Product)
		}
		counts[key{e.Product, e.Renewed}] = e.Within
	}
	out := make([][]metrics.Sample, 3)
	for _, p := range products {
		for _, renewed := range []bool{false, true} {
			within := counts[key{p, renewed}]
			for i, d := range ExpiryWindows {
				v := 0.0
				if within != nil {
					v = float64(within[i])
				}
				out[0] = append(out[0], metrics.Sample{Labels: []string{p, strconv.Itoa(d), strconv.FormatBool(renewed)}, Value: v})
			}
		}
	}
	for _, c := range crls {
		out[1] = append(out[1], metrics.Sample{Labels: []string{c.Issuer}, Value: now.Sub(c.ThisUpdate).Seconds()})
		out[2] = append(out[2], metrics.Sample{Labels: []string{c.Issuer}, Value: c.NextUpdate.Sub(now).Seconds()})
	}
	return out, nil
}
