package main

import (
	"testing"
	"time"

	"github.com/certlife/platform/pkg/app"
)

// SPEC §7.1 CLOCK_CONTROL: the dev clock moves forward only and answers
// bad input with problems; without CLOCK_CONTROL the route does not exist.
func TestDevClockEndpoint_CLOCK_CONTROL(t *testing.T) {
	e := startE2E(t, nil, nil)
	before := e.p.Clock.Now()
	r := e.do("POST", "/dev/v1/clock", map[string]string{"advance": "720h"})
	var now struct {
		Now time.Time `json:"now"`
	}
	r.JSON(t, &now)
	if r.Status != 200 || now.Now.Sub(before) < 720*time.Hour {
		t.Fatalf("advance: %d %s", r.Status, r.Body)
	}
	for _, body := range []map[string]string{
		{"advance": "-1h"},
		{"advance": "soon"},
		{"set": before.Format(time.RFC3339)},
		{},
	} {
		if r := e.do("POST", "/dev/v1/clock", body); r.Status != 422 {
			t.Errorf("%v: %d %s", body, r.Status, r.Body)
		}
	}
	if !e.p.Clock.Now().After(before.Add(720 * time.Hour)) {
		t.Fatal("a refused request moved the clock")
	}

	off := startE2E(t, func(c *app.Config) { c.ClockControl = false }, nil)
	if r := off.do("POST", "/dev/v1/clock", map[string]string{"advance": "1h"}); r.Status != 404 {
		t.Fatalf("without CLOCK_CONTROL: %d", r.Status)
	}
}
