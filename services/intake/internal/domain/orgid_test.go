package domain

import (
	"strings"
	"testing"

	"github.com/certlife/platform/pkg/events"
)

// PC-1, SPEC §5: the corporate number's check digit. Known-good numbers
// (the two of SPEC §5; the National Tax Agency's; Toyota Motor's) pass,
// and every one-digit change of them fails — in the check digit and in
// each of the twelve digits it covers.
func TestCorporateNumberCheckDigit_PC1(t *testing.T) {
	for _, good := range []string{"4010001012345", "7000012050002", "1000011000005", "1180301018771"} {
		if !CorporateNumberValid(good) {
			t.Errorf("%s: refused, want valid", good)
		}
		for i := 0; i < 13; i++ {
			b := []byte(good)
			// ±1 (never 9↔0, a change of 9 the mod-9 sum cannot see)
			if b[i] == '9' {
				b[i]--
			} else {
				b[i]++
			}
			if CorporateNumberValid(string(b)) {
				t.Errorf("%s (digit %d of %s changed): accepted", b, i+1, good)
			}
		}
	}
	for _, bad := range []string{"", "401000101234", "40100010123456", "401000101234A", "０１２３４５６７８９０１２"} {
		if CorporateNumberValid(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

// PC-1: ISO 17442 LEIs, ISO 7064 MOD 97-10: real LEIs pass; one
// character changed anywhere, or the check digits swapped, fails.
func TestLEIChecksum_PC1(t *testing.T) {
	for _, good := range []string{"5493001KJTIIGC8Y1R12", "7LTWFZYICNSX8D621K86", "HWUPKR0MPOU8FGXBT394", "5493006W3QUS5LMH6R84"} {
		if !LEIValid(good) {
			t.Errorf("%s: refused, want valid", good)
		}
		for i := 0; i < 20; i++ {
			b := []byte(good)
			switch {
			case b[i] == '9':
				b[i] = '0'
			case b[i] >= '0' && b[i] < '9':
				b[i]++
			case b[i] == 'Z':
				b[i] = 'A'
			default:
				b[i]++
			}
			if LEIValid(string(b)) {
				t.Errorf("%s (character %d of %s changed): accepted", b, i+1, good)
			}
		}
		swapped := good[:18] + good[19:] + good[18:19]
		if swapped != good && LEIValid(swapped) {
			t.Errorf("%s (check digits swapped): accepted", swapped)
		}
	}
	for _, bad := range []string{"", "5493001KJTIIGC8Y1R1", "5493001kjtiigc8y1r12", "5493001KJTIIGC8Y1RAB"} {
		if LEIValid(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

// PC-1 (S/MIME BR 7.1.4.2.2 d, Appendix A): each identifier form, valid
// and not, with one clear message for the field.
func TestOrganizationIdentifierForms_PC1(t *testing.T) {
	for _, good := range []string{
		"NTRJP-4010001012345", "NTRJP-7000012050002",
		"LEIXG-5493001KJTIIGC8Y1R12", "LEIXG-7LTWFZYICNSX8D621K86",
		"VATJP-T4010001012345",
		"GOVJP", "GOVJP+13", "GOVJP+01", "GOVJP+47",
	} {
		if msg := CheckOrgID(good); msg != "" {
			t.Errorf("%s: %s", good, msg)
		}
	}
	for _, c := range []struct{ id, want string }{
		{"NTRJP-4010001012346", "wrong check digit"},
		{"NTRJP-5010001012345", "wrong check digit"},
		{"NTRJP-401000101234", "must be 13 digits"},
		{"NTRJP-", "must be 13 digits"},
		{"NTRJP", "must be 13 digits"},
		{"NTRJP+13-4010001012345", "subdivision"},
		{"NTRUS-4010001012345", "country must be JP"},
		{"LEIXG-5493001KJTIIGC8Y1R13", "wrong check digits"},
		{"LEIXG-5493001KJTIIGC8Y1R1", "20 characters"},
		{"LEIJP-5493001KJTIIGC8Y1R12", `"XG"`},
		{"VATJP-T4010001012346", "wrong check digit"},
		{"VATJP-4010001012345", "qualified invoice issuer number"},
		{"VATDE-123456789", "country must be JP"},
		{"VATEL-123456789", "country must be JP"},
		{"VATQQ-123456789", "not an ISO 3166-1 country code"},
		{"GOVJP-13", "has no reference"},
		{"GOVJP+48", "01 to 47"},
		{"GOVJP+CA", "01 to 47"},
		{"GOVUS+CA", "country must be JP"},
		{"INTXG", "not a registration scheme accepted here"},
		{"PSDBE-NBB-1234.567.890", "not a registration scheme accepted here"},
		{"4010001012345", "must be NTRJP-"},
		{"NTR-JP-4010001012345", "must be NTRJP-"},
		{"NTRJP 4010001012345", "must be NTRJP-"},
		{strings.Repeat("A", 65), "longer than 64"},
	} {
		got := CheckOrgID(c.id)
		if got == "" || !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want a message with %q", c.id, got, c.want)
		}
	}
}

// PC-1: in a new application the identifier is required, normalized
// (case, surrounding space), and a bad one is one error naming the field.
func TestNewApplicationIdentifier_PC1(t *testing.T) {
	s := func(v string) *string { return &v }
	for _, c := range []struct {
		in   *string
		want string // the stored value, or "" for an error
	}{
		{s(" ntrjp-4010001012345 "), "NTRJP-4010001012345"},
		{s("LEIXG-5493001KJTIIGC8Y1R12"), "LEIXG-5493001KJTIIGC8Y1R12"},
		{nil, ""},
		{s(""), ""},
		{s("NTRJP-4010001012346"), ""},
	} {
		var e Errors
		got := checkOrganization(&e, OrganizationInput{CompanyCode: s("984940947"), NameJa: s("日本ベリサイン株式会社"),
			NameEn: s("VeriSign Japan K.K."), Identifier: c.in})
		if got.Identifier != c.want {
			t.Errorf("%v: identifier %q, want %q", c.in, got.Identifier, c.want)
		}
		if wantErr := c.want == ""; wantErr != (len(e) == 1 && e[0].Name == "organization.identifier") || (!wantErr && len(e) > 0) {
			t.Errorf("%v: errors %+v", c.in, e)
		}
	}
}

// PC-1, PC-9: a renewal or reissue cannot change the identifier (422
// naming it); one of a certificate applied for before it was collected
// may add it, checked like a new one.
func TestIdentifierOnRenewalAndReissue_PC1_PC9(t *testing.T) {
	s := func(v string) *string { return &v }
	prevApplicant := events.Applicant{NameJa: "辺利 太郎", NameEn: "Veri Taro", Email: "taro@example.co.jp", Phone: "0350001111",
		Address: events.Address{PostalCode: "1040028", Prefecture: "東京都", City: "中央区", Street: "八重洲2-8-1"}}
	withID := events.Organization{CompanyCode: "984940947", NameJa: "日本ベリサイン株式会社", NameEn: "VeriSign Japan K.K.",
		Identifier: "NTRJP-4010001012345"}
	old := withID
	old.Identifier = ""
	for _, c := range []struct {
		name    string
		prev    events.Organization
		change  *string
		want    string // resulting identifier
		wantErr bool
	}{
		{"unchanged", withID, nil, "NTRJP-4010001012345", false},
		{"same value sent back", withID, s("ntrjp-4010001012345"), "NTRJP-4010001012345", false},
		{"changed", withID, s("LEIXG-5493001KJTIIGC8Y1R12"), "NTRJP-4010001012345", true},
		{"removed", withID, s(""), "NTRJP-4010001012345", true},
		{"old certificate, none added", old, nil, "", false},
		{"old certificate, added", old, s("LEIXG-5493001KJTIIGC8Y1R12"), "LEIXG-5493001KJTIIGC8Y1R12", false},
		{"old certificate, bad one added", old, s("NTRJP-4010001012346"), "", true},
	} {
		ch := &Changes{Organization: &OrganizationInput{Identifier: c.change}}
		out, e := ch.Apply("ja", c.prev, prevApplicant)
		if out.Organization.Identifier != c.want {
			t.Errorf("%s: identifier %q, want %q", c.name, out.Organization.Identifier, c.want)
		}
		if c.wantErr != (len(e) == 1 && e[0].Name == "changes.organization.identifier") || (!c.wantErr && len(e) > 0) {
			t.Errorf("%s: errors %+v", c.name, e)
		}
		if out.Organization.NameEn != c.prev.NameEn || out.Organization.CompanyCode != c.prev.CompanyCode {
			t.Errorf("%s: organization %+v", c.name, out.Organization)
		}
	}
	if got := Immutable(withID); len(got) != len(ImmutableFields)+1 || got[3] != "organization.identifier" {
		t.Errorf("immutable fields with an identifier: %v", got)
	}
	if got := Immutable(old); len(got) != len(ImmutableFields) {
		t.Errorf("immutable fields without one: %v", got)
	}
}
