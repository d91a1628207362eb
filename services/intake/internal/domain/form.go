package domain

// The application bodies of the public API and their validation (PC-1):
// one field error per bad field, named by JSON path.

import (
	"net/mail"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
)

// AddressInput is the work address of the applicant.
type AddressInput struct {
	PostalCode *string `json:"postal_code"`
	Prefecture *string `json:"prefecture"`
	City       *string `json:"city"`
	Street     *string `json:"street"`
	Building   *string `json:"building"`
}

// ApplicantInput is the person the certificate is for.
type ApplicantInput struct {
	NameJa       *string       `json:"name_ja"`
	NameEn       *string       `json:"name_en"`
	TitleJa      *string       `json:"title_ja"`
	DepartmentJa *string       `json:"department_ja"`
	TitleEn      *string       `json:"title_en"`
	Email        *string       `json:"email"`
	Phone        *string       `json:"phone"`
	Address      *AddressInput `json:"address"`
}

// OrganizationInput is the applicant's organization.
type OrganizationInput struct {
	CompanyCode *string `json:"company_code"`
	NameJa      *string `json:"name_ja"`
	NameEn      *string `json:"name_en"`
	// Identifier is the registration identifier (PC-1, orgid.go).
	Identifier *string `json:"identifier"`
	// DUNS and Address name a server certificate's organization (SPEC §5);
	// a client application refuses them.
	DUNS    *string             `json:"duns"`
	Address *ServerAddressInput `json:"address"`
}

// NewApplication is the body of POST /v1/applications (SPEC §5). Pointers
// tell a missing field from an empty one.
type NewApplication struct {
	Product      *string            `json:"product"`
	Coupon       *string            `json:"coupon"`
	Password     *string            `json:"password"`
	Language     *string            `json:"language"`
	Organization *OrganizationInput `json:"organization"`
	Applicant    *ApplicantInput    `json:"applicant"`
	// The server application's fields (SPEC §5, server.go); a client
	// application refuses them.
	ServerFields
}

var (
	couponRe      = regexp.MustCompile(`^[0-9]{8}-[0-9]{8}$`)
	postalRe      = regexp.MustCompile(`^[0-9]{7}$`)
	phoneRe       = regexp.MustCompile(`^0[0-9]{9,10}$`)
	companyCodeRe = regexp.MustCompile(`^[0-9]{9}$`)
	nameEnRe      = regexp.MustCompile(`^[A-Za-z][A-Za-z .,'&()\-]*$`)
	// printable ASCII for romanized titles and English organization names
	asciiRe = regexp.MustCompile(`^[\x20-\x7e]+$`)
)

// Prefectures are the 47 prefectures of Japan.
var Prefectures = []string{
	"北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県", "茨城県", "栃木県", "群馬県",
	"埼玉県", "千葉県", "東京都", "神奈川県", "新潟県", "富山県", "石川県", "福井県", "山梨県", "長野県",
	"岐阜県", "静岡県", "愛知県", "三重県", "滋賀県", "京都府", "大阪府", "兵庫県", "奈良県", "和歌山県",
	"鳥取県", "島根県", "岡山県", "広島県", "山口県", "徳島県", "香川県", "愛媛県", "高知県", "福岡県",
	"佐賀県", "長崎県", "熊本県", "大分県", "宮崎県", "鹿児島県", "沖縄県",
}

// Errors collects field errors.
type Errors []errs.Field

func (e *Errors) add(field, msg string) {
	*e = append(*e, errs.Field{Name: field, Message: msg})
}

// Err is the 422 for the collected errors, or nil.
func (e Errors) Err() error {
	if len(e) == 0 {
		return nil
	}
	return errs.Invalid(e...)
}

// text checks a required or optional text field and returns its value.
func (e *Errors) text(field string, v *string, required bool, max int, re *regexp.Regexp, reMsg string) string {
	if v == nil || strings.TrimSpace(*v) == "" {
		if required {
			e.add(field, "is required")
		}
		return ""
	}
	s := strings.TrimSpace(*v)
	switch {
	case !utf8.ValidString(s) || strings.ContainsAny(s, "\x00\r\n\t"):
		e.add(field, "contains characters that are not allowed")
	case utf8.RuneCountInString(s) > max:
		e.add(field, "is longer than the maximum")
	case re != nil && !re.MatchString(s):
		e.add(field, reMsg)
	default:
		return s
	}
	return ""
}

// Validated is a new application that passed validation.
type Validated struct {
	Product      string
	Coupon       string
	Password     string
	Language     string
	Organization events.Organization
	Applicant    events.Applicant
}

// Validate checks every field of a new client application (PC-1).
func (a NewApplication) Validate() (Validated, Errors) {
	var e Errors
	var v Validated
	v.Product = e.text("product", a.Product, true, 16, nil, "")
	if v.Product != "" && v.Product != events.ProductClient {
		e.add("product", "must be \"client\" or \"server\"")
	}
	a.ServerFields.refuse(&e, "a client application")
	if o := a.Organization; o != nil {
		if o.DUNS != nil {
			e.add("organization.duns", "is not a field of a client application")
		}
		if o.Address != nil {
			e.add("organization.address", "is not a field of a client application")
		}
	}
	v.Coupon = e.text("coupon", a.Coupon, true, 17, couponRe, "must be 8 digits, a hyphen and 8 digits")
	v.Password = checkPassword(&e, "password", a.Password)
	v.Language = e.text("language", a.Language, true, 2, nil, "")
	if v.Language != "" && v.Language != "ja" && v.Language != "en" {
		e.add("language", "must be \"ja\" or \"en\"")
	}
	if a.Organization == nil {
		e.add("organization", "is required")
	} else {
		v.Organization = checkOrganization(&e, *a.Organization)
	}
	if a.Applicant == nil {
		e.add("applicant", "is required")
	} else {
		v.Applicant = checkApplicant(&e, *a.Applicant)
	}
	return v, e
}

// CheckPassword checks a new password (8 to 128 characters).
func CheckPassword(e *Errors, field string, p *string) string { return checkPassword(e, field, p) }

func checkPassword(e *Errors, field string, p *string) string {
	if p == nil || *p == "" {
		e.add(field, "is required")
		return ""
	}
	n := utf8.RuneCountInString(*p)
	switch {
	case !utf8.ValidString(*p):
		e.add(field, "must be valid UTF-8")
	case n < 8:
		e.add(field, "must be at least 8 characters")
	case n > 128:
		e.add(field, "must be at most 128 characters")
	default:
		return *p
	}
	return ""
}

func checkOrganization(e *Errors, o OrganizationInput) events.Organization {
	return events.Organization{
		CompanyCode: e.text("organization.company_code", o.CompanyCode, true, 9, companyCodeRe, "must be the 9-digit company code"),
		NameJa:      e.text("organization.name_ja", o.NameJa, true, 128, nil, ""),
		NameEn:      e.text("organization.name_en", o.NameEn, true, 64, asciiRe, "must be in Latin letters"),
		Identifier:  checkOrgID(e, "organization.identifier", o.Identifier),
	}
}

// checkOrgID checks a required registration identifier (PC-1) and
// returns it normalized, or "" with one field error.
func checkOrgID(e *Errors, field string, v *string) string {
	s := e.text(field, v, true, 64, nil, "")
	if s == "" {
		return ""
	}
	id := NormalizeOrgID(s)
	if msg := CheckOrgID(id); msg != "" {
		e.add(field, msg)
		return ""
	}
	return id
}

func checkApplicant(e *Errors, a ApplicantInput) events.Applicant {
	out := events.Applicant{
		NameJa:       e.text("applicant.name_ja", a.NameJa, true, 64, nil, ""),
		NameEn:       e.text("applicant.name_en", a.NameEn, true, 64, nameEnRe, "must be in Latin letters"),
		TitleJa:      e.text("applicant.title_ja", a.TitleJa, false, 64, nil, ""),
		DepartmentJa: e.text("applicant.department_ja", a.DepartmentJa, false, 64, nil, ""),
		TitleEn:      e.text("applicant.title_en", a.TitleEn, false, 64, asciiRe, "must be in Latin letters"),
		Phone:        e.text("applicant.phone", a.Phone, true, 11, phoneRe, "must be a Japanese phone number of 10 or 11 digits, without hyphens"),
	}
	out.Email = checkEmail(e, "applicant.email", a.Email)
	if a.Address == nil {
		e.add("applicant.address", "is required")
		return out
	}
	ad := *a.Address
	out.Address = events.Address{
		PostalCode: e.text("applicant.address.postal_code", ad.PostalCode, true, 7, postalRe, "must be 7 digits without a hyphen"),
		Prefecture: e.text("applicant.address.prefecture", ad.Prefecture, true, 4, nil, ""),
		City:       e.text("applicant.address.city", ad.City, true, 64, nil, ""),
		Street:     e.text("applicant.address.street", ad.Street, true, 128, nil, ""),
		Building:   e.text("applicant.address.building", ad.Building, false, 128, nil, ""),
	}
	if p := out.Address.Prefecture; p != "" && !isPrefecture(p) {
		e.add("applicant.address.prefecture", "must be one of the 47 prefectures, e.g. 東京都")
		out.Address.Prefecture = ""
	}
	return out
}

func checkEmail(e *Errors, field string, v *string) string {
	s := e.text(field, v, true, 254, nil, "")
	if s == "" {
		return ""
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != s || !strings.Contains(s[strings.IndexByte(s, '@'):], ".") {
		e.add(field, "must be an e-mail address")
		return ""
	}
	return strings.ToLower(s)
}

func isPrefecture(p string) bool {
	for _, q := range Prefectures {
		if p == q {
			return true
		}
	}
	return false
}
