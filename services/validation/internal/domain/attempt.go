package domain

import (
	"time"

	"github.com/google/uuid"
)

// What an attempt validated.
const (
	AttemptDomain       = "domain"       // domain control (VA-1 … VA-3)
	AttemptCAA          = "caa"          // CAA permission (VA-4)
	AttemptOrganization = "organization" // organization vs the registry (SV-7)
)

// Results of an attempt.
const (
	ResultPassed = "passed"
	ResultFailed = "failed"
)

// Attempt is the audit record of one validation attempt (VA-9, TLS BR
// SC-099): what was validated, by which method (and BR section and
// version), the SHA-256 of the random value — never the value —, what
// each perspective observed, the result and the time.
type Attempt struct {
	ID            uuid.UUID     `json:"id"`
	At            time.Time     `json:"at"`
	Kind          string        `json:"kind"`
	Subject       string        `json:"subject"` // the domain, or the organization's registry number
	ApplicationID string        `json:"application_id,omitempty"`
	ValidationID  *uuid.UUID    `json:"validation_id,omitempty"`
	Method        string        `json:"method"`
	BRSection     string        `json:"br_section,omitempty"`
	BRVersion     string        `json:"br_version,omitempty"`
	ValueSHA256   string        `json:"value_sha256,omitempty"`
	Result        string        `json:"result"`
	Detail        string        `json:"detail,omitempty"`
	Perspectives  []Observation `json:"perspectives"`
	Actor         string        `json:"actor,omitempty"`
}

// NewAttempt starts an attempt record at now.
func NewAttempt(kind, subject, method string, now time.Time) Attempt {
	id, _ := uuid.NewV7() // NewV7 fails only if the system's randomness does
	return Attempt{ID: id, At: now, Kind: kind, Subject: subject, Method: method, BRVersion: BRVersion, Perspectives: []Observation{}}
}

// AuditAction is the audit log's action for the attempt (OP-4).
func (a Attempt) AuditAction() string { return "validation." + a.Kind + "." + a.Result }
