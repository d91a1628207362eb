package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/app"
)

// BenchmarkClientFlow drives BENCH_N client applications (default 200,
// BENCH_CONCURRENCY at a time, default 16) through the whole flow of the
// all-in-one over HTTP — submit, cancel window (200ms, real clock),
// coupon, auto-approved review, code by SMTP, session, retrieval, PKCS#12
// download — and reports applications fully issued per second, p50/p99
// end-to-end latency and the process's peak RSS. `make bench` runs it.
func BenchmarkClientFlow(b *testing.B) {
	n := envInt("BENCH_N", 200)
	conc := envInt("BENCH_CONCURRENCY", 16)
	e := startE2E(b, func(c *app.Config) {
		c.ClockControl = false
		c.CancelWindow = 200 * time.Millisecond
		c.LogLevel = "warn"
	}, nil)
	coupons := e.importCoupons(n)
	b.ResetTimer()
	for range b.N {
		lat := make([]time.Duration, n)
		jobs := make(chan int)
		var wg sync.WaitGroup
		start := time.Now()
		for w := 0; w < conc; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range jobs {
					t0 := time.Now()
					email := fmt.Sprintf("bench%d-%d@example.co.jp", i, start.UnixNano())
					e.submit(coupons[i], email)
					code := e.waitCode(email, 1)
					token := e.login(email, code)
					var certs []certItem
					for len(certs) == 0 {
						certs = e.eligible(token, "retrieval")
					}
					e.retrievePKCS12(token, certs[0].ID, "a strong p12 password")
					lat[i] = time.Since(t0)
				}
			}()
		}
		for i := 0; i < n; i++ {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		elapsed := time.Since(start)
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		p50, p99 := lat[n/2], lat[min(n-1, n*99/100)]
		rss := peakRSS()
		b.ReportMetric(float64(n)/elapsed.Seconds(), "issued/s")
		b.ReportMetric(float64(p50.Milliseconds()), "p50-ms")
		b.ReportMetric(float64(p99.Milliseconds()), "p99-ms")
		b.ReportMetric(float64(rss)/1024, "peak-rss-MiB")
		fmt.Printf("\n%d applications fully issued in %s (concurrency %d, cancel window 200ms)\n", n, elapsed.Round(time.Millisecond), conc)
		fmt.Printf("  throughput   %.1f applications/s\n", float64(n)/elapsed.Seconds())
		fmt.Printf("  latency      p50 %s   p99 %s   (submission → PKCS#12 downloaded)\n", p50.Round(time.Millisecond), p99.Round(time.Millisecond))
		fmt.Printf("  peak RSS     %.0f MiB (whole test process: platform, embedded NATS, SMTP server, clients)\n\n", float64(rss)/1024)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// peakRSS is VmHWM of this process, in KiB.
func peakRSS() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				v, _ := strconv.Atoi(f[1])
				return v
			}
		}
	}
	return 0
}
