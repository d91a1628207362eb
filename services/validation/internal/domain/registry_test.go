package domain

import (
	"crypto/x509/pkix"
	"strings"
	"testing"

	"github.com/certlife/platform/pkg/errs"
)

// SV-7: a registry file in CSV: good lines loaded, each bad line listed
// with its line number and why.
func TestParseRegistryCSV_SV7(t *testing.T) {
	file := "\ufeffnumber,name_en,street,city,state,postal_code,country,phone\n" +
		"984940947,VeriSign Japan K.K.,2-8-1 Yaesu,Chuo-ku,Tokyo,104-0028,JP,+81 3-5000-1111\n" +
		"12-345-6789,\"Example, Inc.\",1 Main St,Springfield,IL,62701,US,+1 217 555 0100\n" +
		"12345,Short Number Co.,1 St,City,,,JP,0300000000\n" +
		"984940947,Duplicate K.K.,1 St,City,,,JP,0300000000\n" +
		"111111111,Bad Country,1 St,City,,,jpn,0300000000\n" +
		"222222222,Too Few,1 St\n" +
		"333333333,,1 St,City,,,JP,call us\n"
	good, bad, err := ParseRegistryCSV([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if len(good) != 2 || good[1].Org.Number != "123456789" || good[1].Org.NameEn != "Example, Inc." || good[0].Line != 2 {
		t.Fatalf("good: %+v", good)
	}
	want := map[int]string{4: "nine digits", 5: "already on line 2", 6: "country", 7: "fields", 8: "name_en: is required"}
	if len(bad) != len(want) {
		t.Fatalf("bad: %+v", bad)
	}
	for _, b := range bad {
		if !strings.Contains(b.Error, want[b.Line]) {
			t.Errorf("line %d: %q, want %q", b.Line, b.Error, want[b.Line])
		}
	}
	if !strings.Contains(bad[len(bad)-1].Error, "phone") {
		t.Errorf("line 8 should name the phone too: %q", bad[len(bad)-1].Error)
	}
	for _, f := range []string{"", "number,name\n1,2\n", "\n"} {
		if _, _, err := ParseRegistryCSV([]byte(f)); !errs.Is(err, errs.KindInvalid) {
			t.Errorf("file %q: %v", f, err)
		}
	}
}

// SV-7: the same as a JSON array; unknown fields are a bad element.
func TestParseRegistryJSON_SV7(t *testing.T) {
	file := `[{"number":"984940947","name_en":"VeriSign Japan K.K.","street":"2-8-1 Yaesu","city":"Chuo-ku","state":"Tokyo","postal_code":"104-0028","country":"JP","phone":"+81 3-5000-1111"},
		{"number":"123456789","name_en":"X","street":"1","city":"C","country":"JP","phone":"0300000000","fax":"1"},
		{"number":123},
		"nope"]`
	good, bad, err := ParseRegistryJSON([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if len(good) != 1 || len(bad) != 3 || !strings.Contains(bad[0].Error, "fax: unknown field") || bad[1].Line != 3 ||
		!strings.Contains(bad[1].Error, "number: must be a string") || !strings.Contains(bad[2].Error, "object") {
		t.Fatalf("good %+v bad %+v", good, bad)
	}
	if _, _, err := ParseRegistryJSON([]byte(`{"number":"1"}`)); !errs.Is(err, errs.KindMalformed) {
		t.Errorf("an object: %v", err)
	}
}

// SV-7: the CSR's subject must equal the registry's English record; each
// difference is listed with both values.
func TestMatchOrganization_SV7(t *testing.T) {
	org := Organization{Number: "984940947", NameEn: "VeriSign Japan K.K.", Street: "2-8-1 Yaesu", City: "Chuo-ku",
		State: "Tokyo", PostalCode: "104-0028", Country: "JP", Phone: "+81 3-5000-1111"}
	exact := pkix.Name{Organization: []string{"VeriSign Japan K.K."}, Locality: []string{"Chuo-ku"}, Province: []string{"Tokyo"}, Country: []string{"JP"}}
	if m := MatchOrganization(SubjectOf(exact), org); len(m) != 0 {
		t.Errorf("exact: %+v", m)
	}
	withAddr := exact
	withAddr.StreetAddress, withAddr.PostalCode = []string{"2-8-1 Yaesu"}, []string{"104-0028"}
	if m := MatchOrganization(SubjectOf(withAddr), org); len(m) != 0 {
		t.Errorf("with street: %+v", m)
	}
	bad := pkix.Name{Organization: []string{"Verisign Japan KK"}, Locality: []string{"Chuo-ku"}, Country: []string{"JP"},
		PostalCode: []string{"1040028"}}
	m := MatchOrganization(SubjectOf(bad), org)
	want := []Mismatch{
		{Field: "organization", Applied: "Verisign Japan KK", Registry: "VeriSign Japan K.K."},
		{Field: "state", Applied: "", Registry: "Tokyo"},
		{Field: "postal_code", Applied: "1040028", Registry: "104-0028"},
	}
	if len(m) != len(want) {
		t.Fatalf("mismatches %+v", m)
	}
	for i := range want {
		if m[i] != want[i] {
			t.Errorf("mismatch %d: %+v, want %+v", i, m[i], want[i])
		}
	}
	two := exact
	two.Organization = []string{"VeriSign Japan K.K.", "Other"}
	if m := MatchOrganization(SubjectOf(two), org); len(m) != 1 || m[0].Applied != "VeriSign Japan K.K. | Other" {
		t.Errorf("two O values: %+v", m)
	}
}
