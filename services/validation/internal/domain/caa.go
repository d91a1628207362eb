package domain

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// CAARecord is one CAA resource record (RFC 8659 §4.1).
type CAARecord struct {
	Flag  uint8  `json:"flag"`
	Tag   string `json:"tag"`
	Value string `json:"value"`
}

func (r CAARecord) String() string { return fmt.Sprintf("%d %s %q", r.Flag, r.Tag, r.Value) }

// CAAPolicy is whose issuance a CAA check asks about.
type CAAPolicy struct {
	// Identities are the issuer domain names the CA recognizes as its own
	// (CAA_IDENTITIES; the CPS §4.2 names them).
	Identities []string `json:"identities"`
	// AccountURI is compared with an accounturi parameter (RFC 8657 §3).
	AccountURI string `json:"account_uri"`
	// MethodLabels name the validation method used; a validationmethods
	// parameter must list one of them (RFC 8657 §4).
	MethodLabels []string `json:"method_labels"`
	// Wildcard: the certificate name is a wildcard (issuewild applies).
	Wildcard bool `json:"wildcard,omitempty"`
}

// CAADecision is the outcome of evaluating a relevant RRset.
type CAADecision struct {
	Allowed bool
	// Reason says which record decided, or why none permitted.
	Reason string
}

// caaCritical is the Issuer Critical flag (RFC 8659 §4.1: bit 0, the
// most significant).
const caaCritical = 0x80

// EvaluateCAA decides on the relevant CAA RRset found at foundAt (RFC
// 8659 §3; empty set = none found up to the top: issuance is allowed).
// A property with the critical flag whose tag is not issue, issuewild or
// iodef forbids issuance; iodef is recognized and ignored. For a
// wildcard name the issuewild properties decide when there are any, else
// the issue ones (§4.3); for other names the issue properties, and none
// means no restriction. A record permits when its issuer domain name is
// one of the CA's identities and its parameters accounturi (exactly the
// account's URI) and validationmethods (listing a label of the method
// used) agree (RFC 8657). A malformed value permits nothing.
func EvaluateCAA(set []CAARecord, foundAt string, p CAAPolicy) CAADecision {
	if len(set) == 0 {
		return CAADecision{Allowed: true, Reason: "no CAA record up to the top-level domain"}
	}
	var issue, issuewild []CAARecord
	for _, r := range set {
		switch strings.ToLower(r.Tag) {
		case "issue":
			issue = append(issue, r)
		case "issuewild":
			issuewild = append(issuewild, r)
		case "iodef":
		default:
			if r.Flag&caaCritical != 0 {
				return CAADecision{Reason: fmt.Sprintf("CAA at %s has the critical property %s, which this CA does not know (RFC 8659 §4.1)", foundAt, r)}
			}
		}
	}
	relevant, tag := issue, "issue"
	if p.Wildcard && len(issuewild) > 0 {
		relevant, tag = issuewild, "issuewild"
	}
	if len(relevant) == 0 {
		return CAADecision{Allowed: true, Reason: fmt.Sprintf("CAA at %s has no %s property", foundAt, tag)}
	}
	var why []string
	for _, r := range relevant {
		ok, reason := permits(r, p)
		if ok {
			return CAADecision{Allowed: true, Reason: fmt.Sprintf("CAA at %s: %s permits", foundAt, r)}
		}
		why = append(why, fmt.Sprintf("%s %s", r, reason))
	}
	return CAADecision{Reason: fmt.Sprintf("CAA at %s forbids: %s", foundAt, strings.Join(why, "; "))}
}

var (
	caaParamTag = regexp.MustCompile(`^[A-Za-z0-9]+$`)
	caaParamVal = regexp.MustCompile(`^[\x21-\x3a\x3c-\x7e]*$`)
	caaLabel    = regexp.MustCompile(`^[A-Za-z0-9]+(-+[A-Za-z0-9]+)*$`)
)

// permits reports whether one issue/issuewild record permits issuance
// under p, and if not, why.
func permits(r CAARecord, p CAAPolicy) (bool, string) {
	issuer, params, err := parseIssueValue(r.Value)
	if err != nil {
		return false, "is malformed: " + err.Error()
	}
	if issuer == "" {
		return false, "permits no CA"
	}
	if !slices.ContainsFunc(p.Identities, func(id string) bool { return strings.EqualFold(id, issuer) }) {
		return false, fmt.Sprintf("names %s, not %s", issuer, strings.Join(p.Identities, " or "))
	}
	if uri, ok := params["accounturi"]; ok {
		if _, err := url.Parse(uri); err != nil {
			return false, "has an accounturi that is not a URI"
		}
		if uri != p.AccountURI {
			return false, fmt.Sprintf("is for account %s, not %s (RFC 8657 accounturi)", uri, p.AccountURI)
		}
	}
	if list, ok := params["validationmethods"]; ok {
		labels := strings.Split(list, ",")
		for _, l := range labels {
			if !caaLabel.MatchString(l) {
				return false, fmt.Sprintf("has a malformed validationmethods label %q", l)
			}
		}
		if !slices.ContainsFunc(labels, func(l string) bool { return slices.Contains(p.MethodLabels, l) }) {
			return false, fmt.Sprintf("allows the methods %s, not %s (RFC 8657 validationmethods)", list, strings.Join(p.MethodLabels, " or "))
		}
	}
	return true, ""
}

// parseIssueValue splits an issue/issuewild value into the issuer domain
// name and its parameters (RFC 8659 §4.2): issuer [";" tag=value]*.
// A tag given twice is malformed.
func parseIssueValue(v string) (string, map[string]string, error) {
	isWSP := func(r rune) bool { return r == ' ' || r == '\t' }
	parts := strings.Split(v, ";")
	issuer := strings.TrimFunc(parts[0], isWSP)
	params := map[string]string{}
	for i, part := range parts[1:] {
		part = strings.TrimFunc(part, isWSP)
		if part == "" && i == len(parts)-2 {
			break // a trailing ";"
		}
		tag, val, ok := strings.Cut(part, "=")
		tag, val = strings.TrimFunc(tag, isWSP), strings.TrimFunc(val, isWSP)
		if !ok || !caaParamTag.MatchString(tag) || !caaParamVal.MatchString(val) {
			return "", nil, fmt.Errorf("parameter %q is not tag=value", part)
		}
		tag = strings.ToLower(tag)
		if _, dup := params[tag]; dup {
			return "", nil, fmt.Errorf("parameter %s is given twice", tag)
		}
		params[tag] = val
	}
	return strings.ToLower(strings.TrimSuffix(issuer, ".")), params, nil
}
