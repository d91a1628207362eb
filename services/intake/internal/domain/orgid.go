package domain

// The organization's registration identifier (PC-1), in the form the
// issuer writes into subject:organizationIdentifier (PC-17, S/MIME BR
// 7.1.4.2.2 d and Appendix A):
//
//	NTRJP-<13-digit corporate number>     national trade register, Japan
//	LEIXG-<20-character LEI>              ISO 17442, global ("XG")
//	VATJP-T<13-digit corporate number>    tax authority (qualified invoice issuer number)
//	GOVJP or GOVJP+<prefecture 01…47>     government entity (Note 2: no reference)
//
// Every certificate carries countryName JP, and SBR 7.1.4.2.2 d Note 1
// makes the country of every scheme but LEI and INT match it: a VAT or
// GOV identifier of another country would make the certificate
// non-compliant, so it is refused here, with that reason.

import (
	"regexp"
	"strings"
)

// SubjectCountry is the countryName of every client certificate: the
// platform serves organizations registered in Japan.
const SubjectCountry = "JP"

var (
	orgIDShape = regexp.MustCompile(`^([A-Z]{3})([A-Z]{2})(\+[A-Z0-9]{1,3})?(?:-(.*))?$`)
	digits13   = regexp.MustCompile(`^[0-9]{13}$`)
	leiShape   = regexp.MustCompile(`^[0-9A-Z]{18}[0-9]{2}$`)
	// ISO 3166-2:JP subdivision codes: the 47 prefectures, 01…47.
	jpSubdivision = regexp.MustCompile(`^\+(0[1-9]|[1-3][0-9]|4[0-7])$`)
	// ISO 3166-1 alpha-2 codes officially assigned, plus EL and XI (the
	// VAT prefixes of Greece and Northern Ireland, EU Directive
	// 2006/112/EC Art. 215), so that a foreign code is named as foreign
	// rather than as unknown.
	iso3166 = strings.Fields(`AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
		BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES
		ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO
		IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK
		ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR
		PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK
		TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW EL XI`)
)

const orgIDForms = `must be NTRJP- and the 13-digit corporate number, LEIXG- and the 20-character LEI, ` +
	`VATJP-T and the 13-digit corporate number, or GOVJP (GOVJP+13 for a prefecture) (S/MIME BR 7.1.4.2.2 d)`

// NormalizeOrgID is the form identifiers are stored and compared in:
// trimmed, upper case (every scheme, country and reference allowed here
// is upper case).
func NormalizeOrgID(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

// CheckOrgID checks a normalized identifier and returns "" when it is
// valid, else the one message for its field error.
func CheckOrgID(id string) string {
	if len(id) > 64 {
		return "is longer than 64 characters"
	}
	m := orgIDShape.FindStringSubmatch(id)
	if m == nil {
		return orgIDForms
	}
	scheme, country, sub, ref := m[1], m[2], m[3], m[4]
	hasRef := strings.Contains(id, "-")
	switch scheme {
	case "NTR", "VAT", "GOV":
		if country != SubjectCountry {
			if !isCountry(country) {
				return country + " is not an ISO 3166-1 country code; " + orgIDForms
			}
			return "the country must be JP, the country of the certificate (S/MIME BR 7.1.4.2.2 d Note 1: " +
				"the identifier's country matches subject:countryName)"
		}
	case "LEI":
		if country != "XG" {
			return `an LEI is global: its country code is "XG" (LEIXG-…, S/MIME BR 7.1.4.2.2 d Note 1)`
		}
	default:
		return scheme + " is not a registration scheme accepted here; " + orgIDForms
	}
	if sub != "" && scheme != "GOV" {
		return "a subdivision (+…) is not used with " + scheme + "; " + orgIDForms
	}
	switch scheme {
	case "NTR":
		if !hasRef || !digits13.MatchString(ref) {
			return "the corporate number after NTRJP- must be 13 digits"
		}
		if !CorporateNumberValid(ref) {
			return "the corporate number " + ref + " has a wrong check digit"
		}
	case "VAT":
		num, ok := strings.CutPrefix(ref, "T")
		if !hasRef || !ok || !digits13.MatchString(num) {
			return "a Japanese VAT reference is the qualified invoice issuer number: VATJP-T and the 13-digit corporate number"
		}
		if !CorporateNumberValid(num) {
			return "the corporate number " + num + " in the VAT reference has a wrong check digit"
		}
	case "LEI":
		if !hasRef || !leiShape.MatchString(ref) {
			return "the LEI after LEIXG- must be 20 characters: 18 letters or digits and 2 check digits (ISO 17442)"
		}
		if !LEIValid(ref) {
			return "the LEI " + ref + " has wrong check digits (ISO 17442, ISO 7064 MOD 97-10)"
		}
	case "GOV":
		if hasRef {
			return "a government entity's identifier has no reference: GOVJP, or GOVJP+ and its prefecture code (S/MIME BR 7.1.4.2.2 d Note 2)"
		}
		if sub != "" && !jpSubdivision.MatchString(sub) {
			return "the subdivision after GOVJP+ must be a prefecture code, 01 to 47 (ISO 3166-2:JP)"
		}
	}
	return ""
}

func isCountry(c string) bool {
	for _, k := range iso3166 {
		if k == c {
			return true
		}
	}
	return false
}

// CorporateNumberValid checks the check digit of a 13-digit Japanese
// corporate number (SPEC §5): the first digit is 9 − (Σ Pₙ·Qₙ mod 9)
// over the other twelve digits Pₙ counted from the right, with Qₙ = 1
// for odd n and 2 for even n.
func CorporateNumberValid(s string) bool {
	if !digits13.MatchString(s) {
		return false
	}
	sum := 0
	for n := 1; n <= 12; n++ {
		p := int(s[13-n] - '0')
		q := 1
		if n%2 == 0 {
			q = 2
		}
		sum += p * q
	}
	return int(s[0]-'0') == 9-sum%9
}

// LEIValid checks an ISO 17442 LEI: 20 characters whose ISO 7064
// MOD 97-10 value (letters as 10…35) is 1.
func LEIValid(s string) bool {
	if !leiShape.MatchString(s) {
		return false
	}
	r := 0
	for _, c := range s {
		v := int(c - '0')
		if c >= 'A' {
			v = int(c-'A') + 10
			r = (r*100 + v) % 97
			continue
		}
		r = (r*10 + v) % 97
	}
	return r == 1
}
