package events

import "time"

// Multi-perspective issuance corroboration (VA-7, TLS BR 3.2.2.9): the
// validation service (the primary perspective) asks every remote
// perspective — a validation-agent process with its own resolver — to
// repeat a DNS, HTTP or CAA check, over NATS request/reply. Each agent
// answers on a subject of its own, so that the primary knows who saw
// what.

// AgentCheckSubjectPrefix starts every agent's check subject.
const AgentCheckSubjectPrefix = "rpc.validation.agent."

// AgentCheckSubject is the subject the named agent answers checks on:
// rpc.validation.agent.<name>.check.
func AgentCheckSubject(agent string) string { return AgentCheckSubjectPrefix + agent + ".check" }

// Check kinds of a perspective check.
const (
	PerspectiveCheckDNSTXT   = "dns-txt"
	PerspectiveCheckHTTPFile = "http-file"
	PerspectiveCheckCAA      = "caa"
)

// PerspectiveCheckRequest asks a remote perspective to repeat a check.
// It carries no secret: DNS and HTTP random values are published by the
// customer (SE-1); e-mail validation is not corroborated.
type PerspectiveCheckRequest struct {
	CheckID string `json:"check_id"`
	Kind    string `json:"kind"` // dns-txt | http-file | caa
	Domain  string `json:"domain"`
	// dns-txt: the names whose TXT records may hold Expected.
	Names []string `json:"names,omitempty"`
	// http-file: the URL path on Domain whose content must hold Expected.
	Path     string `json:"path,omitempty"`
	Expected string `json:"expected,omitempty"`
	// caa: whose issuance is asked about.
	CAA *PerspectiveCAAPolicy `json:"caa,omitempty"`
	// Deadline is when the primary stops waiting: the agent gives up then.
	Deadline time.Time `json:"deadline"`
}

// PerspectiveCAAPolicy is the CAA question: may one of Identities issue
// for the domain, for AccountURI, by a method named by MethodLabels
// (RFC 8659, RFC 8657)?
type PerspectiveCAAPolicy struct {
	Identities   []string `json:"identities"`
	AccountURI   string   `json:"account_uri"`
	MethodLabels []string `json:"method_labels"`
	Wildcard     bool     `json:"wildcard,omitempty"`
}

// PerspectiveCheckResponse is what the agent saw.
type PerspectiveCheckResponse struct {
	CheckID string `json:"check_id"`
	Agent   string `json:"agent"`
	Region  string `json:"region"`
	// Outcome: found | not_found (dns-txt, http-file), allowed |
	// forbidden (caa), error (no usable answer).
	Outcome string   `json:"outcome"`
	DNSSEC  string   `json:"dnssec,omitempty"` // secure | insecure
	Seen    []string `json:"seen,omitempty"`
	Detail  string   `json:"detail,omitempty"`
}
