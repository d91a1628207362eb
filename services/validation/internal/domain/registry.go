package domain

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/certlife/platform/pkg/errs"
)

// Organization is one organization as the independent business registry
// records it in English (SV-7): what a CSR's subject must equal, and the
// main phone number phone verification calls (SV-9).
type Organization struct {
	Number     string `json:"number"`
	NameEn     string `json:"name_en"`
	Street     string `json:"street"`
	City       string `json:"city"`
	State      string `json:"state"`
	PostalCode string `json:"postal_code"`
	Country    string `json:"country"`
	Phone      string `json:"phone"`
}

// RegistryHeader is the CSV header of a registry file.
var RegistryHeader = []string{"number", "name_en", "street", "city", "state", "postal_code", "country", "phone"}

var (
	registryNumber = regexp.MustCompile(`^[0-9]{9}$`)
	countryCode    = regexp.MustCompile(`^[A-Z]{2}$`)
	phoneNumber    = regexp.MustCompile(`^\+?[0-9][0-9 ()-]{5,30}$`)
)

// NormalizeRegistryNumber reads a DUNS-like number: nine digits, hyphens
// allowed ("98-494-0947").
func NormalizeRegistryNumber(s string) (string, error) {
	n := strings.ReplaceAll(strings.TrimSpace(s), "-", "")
	if !registryNumber.MatchString(n) {
		return "", fmt.Errorf("%q is not a registry number (nine digits)", s)
	}
	return n, nil
}

// check normalizes o and lists what is wrong with it.
func (o *Organization) check() []string {
	var bad []string
	n, err := NormalizeRegistryNumber(o.Number)
	if err != nil {
		bad = append(bad, "number: "+err.Error())
	}
	o.Number = n
	field := func(name string, v *string, required bool, max int) {
		*v = strings.TrimSpace(*v)
		switch {
		case *v == "" && required:
			bad = append(bad, name+": is required")
		case !utf8.ValidString(*v):
			bad = append(bad, name+": is not UTF-8")
		case utf8.RuneCountInString(*v) > max:
			bad = append(bad, fmt.Sprintf("%s: longer than %d characters", name, max))
		}
	}
	field("name_en", &o.NameEn, true, 256)
	field("street", &o.Street, true, 256)
	field("city", &o.City, true, 128)
	field("state", &o.State, false, 128)
	field("postal_code", &o.PostalCode, false, 40)
	field("country", &o.Country, true, 2)
	field("phone", &o.Phone, true, 40)
	if o.Country != "" && !countryCode.MatchString(o.Country) {
		bad = append(bad, "country: must be an ISO 3166-1 alpha-2 code in capitals (JP)")
	}
	if o.Phone != "" && !phoneNumber.MatchString(o.Phone) {
		bad = append(bad, "phone: must be digits, optionally with a leading + and spaces, hyphens or parentheses")
	}
	return bad
}

// RegistryLine is one good line of a registry file.
type RegistryLine struct {
	Line int
	Org  Organization
}

// Rejection is one line of a file that was not loaded, and why.
type Rejection struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// ParseRegistryCSV reads a registry file in CSV with RegistryHeader
// (UTF-8, a BOM allowed). Good lines and rejected lines come back apart;
// a file that cannot be read at all is an error (invalid: 422).
func ParseRegistryCSV(raw []byte) ([]RegistryLine, []Rejection, error) {
	raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	r := csv.NewReader(bytes.NewReader(raw))
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, nil, errs.InvalidField("file", "the file is empty or not CSV: the first line must be "+strings.Join(RegistryHeader, ","))
	}
	for i := range header {
		header[i] = strings.ToLower(strings.TrimSpace(header[i]))
	}
	if strings.Join(header, ",") != strings.Join(RegistryHeader, ",") {
		return nil, nil, errs.InvalidField("header", "must be "+strings.Join(RegistryHeader, ","))
	}
	var good []RegistryLine
	var bad []Rejection
	seen := map[string]int{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				bad = append(bad, Rejection{Line: pe.StartLine, Error: pe.Err.Error()})
				continue
			}
			return nil, nil, errs.Malformed("the file could not be read")
		}
		line, _ := r.FieldPos(0)
		if len(rec) != len(RegistryHeader) {
			bad = append(bad, Rejection{Line: line, Error: fmt.Sprintf("has %d fields, not %d", len(rec), len(RegistryHeader))})
			continue
		}
		o := Organization{Number: rec[0], NameEn: rec[1], Street: rec[2], City: rec[3], State: rec[4], PostalCode: rec[5], Country: rec[6], Phone: rec[7]}
		good, bad = addLine(good, bad, seen, line, o)
	}
	return good, bad, nil
}

// ParseRegistryJSON reads a registry file as a JSON array of objects
// with RegistryHeader's fields; "line" is the element's position (1-based).
func ParseRegistryJSON(raw []byte) ([]RegistryLine, []Rejection, error) {
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, nil, errs.Malformed("the body must be a JSON array of organizations")
	}
	var good []RegistryLine
	var bad []Rejection
	seen := map[string]int{}
	for i, e := range elems {
		var o Organization
		dec := json.NewDecoder(bytes.NewReader(e))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&o); err != nil {
			bad = append(bad, Rejection{Line: i + 1, Error: jsonProblem(err)})
			continue
		}
		good, bad = addLine(good, bad, seen, i+1, o)
	}
	return good, bad, nil
}

func jsonProblem(err error) string {
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typ):
		if typ.Field == "" {
			return "must be an object"
		}
		return typ.Field + ": must be a string"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`) + ": unknown field"
	}
	return "not a registry object"
}

func addLine(good []RegistryLine, bad []Rejection, seen map[string]int, line int, o Organization) ([]RegistryLine, []Rejection) {
	if problems := o.check(); len(problems) > 0 {
		return good, append(bad, Rejection{Line: line, Error: strings.Join(problems, "; ")})
	}
	if first, dup := seen[o.Number]; dup {
		return good, append(bad, Rejection{Line: line, Error: fmt.Sprintf("number %s is already on line %d", o.Number, first)})
	}
	seen[o.Number] = line
	return append(good, RegistryLine{Line: line, Org: o}), bad
}

// Subject is the part of a CSR's subject compared with the registry
// (SV-7): each attribute with every value the CSR gives.
type Subject struct {
	Organization  []string
	StreetAddress []string
	Locality      []string
	Province      []string
	PostalCode    []string
	Country       []string
}

// SubjectOf reads a CSR's subject.
func SubjectOf(n pkix.Name) Subject {
	return Subject{
		Organization: n.Organization, StreetAddress: n.StreetAddress, Locality: n.Locality,
		Province: n.Province, PostalCode: n.PostalCode, Country: n.Country,
	}
}

// Mismatch is one field of the subject that differs from the registry:
// both values, as applied and as the registry has it (SV-7).
type Mismatch struct {
	Field    string `json:"field"`
	Applied  string `json:"applied"`
	Registry string `json:"registry"`
}

// MatchOrganization compares a CSR's subject with the registry's English
// record: O, L, ST and C must be present and exactly equal; street and
// postal code must be equal when the CSR has them. Each difference is
// listed with both values.
func MatchOrganization(s Subject, o Organization) []Mismatch {
	var out []Mismatch
	cmp := func(field string, applied []string, registry string, required bool) {
		switch {
		case len(applied) == 0 && !required:
		case len(applied) == 0 && registry == "":
		case len(applied) == 0:
			out = append(out, Mismatch{Field: field, Applied: "", Registry: registry})
		case len(applied) > 1:
			out = append(out, Mismatch{Field: field, Applied: strings.Join(applied, " | "), Registry: registry})
		case applied[0] != registry:
			out = append(out, Mismatch{Field: field, Applied: applied[0], Registry: registry})
		}
	}
	cmp("organization", s.Organization, o.NameEn, true)
	cmp("street", s.StreetAddress, o.Street, false)
	cmp("locality", s.Locality, o.City, true)
	cmp("state", s.Province, o.State, true)
	cmp("postal_code", s.PostalCode, o.PostalCode, false)
	cmp("country", s.Country, o.Country, true)
	return out
}
