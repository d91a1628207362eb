package domain

import (
	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
)

// Changes is the "changes" object of a renewal or reissue: the fields of
// the new-application body to change. The organization and the subject's
// names are part of it only to be refused by name (PC-9).
type Changes struct {
	Language     *string            `json:"language"`
	Organization *OrganizationInput `json:"organization"`
	Applicant    *ApplicantInput    `json:"applicant"`
}

// Renewal is the body of POST /v1/certificates/{id}/renewals.
type Renewal struct {
	Coupon  *string  `json:"coupon"`
	Changes *Changes `json:"changes"`
}

// Reissue is the body of POST /v1/certificates/{id}/reissues.
type Reissue struct {
	Reason  *string  `json:"reason"`
	Changes *Changes `json:"changes"`
}

// Reissue reasons (SPEC §5).
const (
	ReissueKeyCompromise = "key_compromise"
	ReissueSuperseded    = "superseded"
)

const immutable = "cannot be changed by a renewal or reissue; make a new application instead"

// FollowUp is the data of a renewal or reissue: the previous application's
// data with the changes applied and checked.
type FollowUp struct {
	Language     string
	Organization events.Organization
	Applicant    events.Applicant
}

// Apply merges the changes onto the previous application's data and checks
// the result as a new application would be checked (PC-1, PC-9). Field
// errors name the path in the request body ("changes.applicant.phone").
func (c *Changes) Apply(prevLanguage string, prevOrg events.Organization, prev events.Applicant) (FollowUp, Errors) {
	var e Errors
	if c == nil {
		c = &Changes{}
	}
	org := prevOrg
	if o := c.Organization; o != nil {
		if o.DUNS != nil {
			e.add("changes.organization.duns", "is not a field of a client certificate")
		}
		if o.Address != nil {
			e.add("changes.organization.address", "is not a field of a client certificate")
		}
		for _, f := range []struct {
			name      string
			new, prev *string
		}{{"company_code", o.CompanyCode, &prevOrg.CompanyCode}, {"name_ja", o.NameJa, &prevOrg.NameJa}, {"name_en", o.NameEn, &prevOrg.NameEn}} {
			if f.new != nil && *f.new != *f.prev {
				e.add("changes.organization."+f.name, immutable)
			}
		}
		org.Identifier = changeOrgID(&e, prevOrg.Identifier, o.Identifier)
	}
	merged := ApplicantInput{
		NameJa: &prev.NameJa, NameEn: &prev.NameEn, TitleJa: &prev.TitleJa, DepartmentJa: &prev.DepartmentJa,
		TitleEn: &prev.TitleEn, Email: &prev.Email, Phone: &prev.Phone,
		Address: &AddressInput{PostalCode: &prev.Address.PostalCode, Prefecture: &prev.Address.Prefecture,
			City: &prev.Address.City, Street: &prev.Address.Street, Building: &prev.Address.Building},
	}
	if a := c.Applicant; a != nil {
		if a.NameJa != nil && *a.NameJa != prev.NameJa {
			e.add("changes.applicant.name_ja", immutable)
		}
		if a.NameEn != nil && *a.NameEn != prev.NameEn {
			e.add("changes.applicant.name_en", immutable)
		}
		override(&merged.TitleJa, a.TitleJa)
		override(&merged.DepartmentJa, a.DepartmentJa)
		override(&merged.TitleEn, a.TitleEn)
		override(&merged.Email, a.Email)
		override(&merged.Phone, a.Phone)
		if ad := a.Address; ad != nil {
			override(&merged.Address.PostalCode, ad.PostalCode)
			override(&merged.Address.Prefecture, ad.Prefecture)
			override(&merged.Address.City, ad.City)
			override(&merged.Address.Street, ad.Street)
			override(&merged.Address.Building, ad.Building)
		}
	}
	language := prevLanguage
	if c.Language != nil {
		language = *c.Language
	}
	var checked Errors
	out := FollowUp{Organization: org, Applicant: checkApplicant(&checked, merged)}
	out.Language = checked.text("language", &language, true, 2, nil, "")
	if out.Language != "" && out.Language != "ja" && out.Language != "en" {
		checked.add("language", "must be \"ja\" or \"en\"")
	}
	for _, fe := range checked {
		e = append(e, errs.Field{Name: "changes." + fe.Name, Message: fe.Message})
	}
	return out, e
}

// changeOrgID applies a change of the registration identifier (PC-1,
// PC-9): like the organization's name it cannot change; a certificate
// applied for before the identifier was collected has none, and its
// renewal or reissue may add one (the new certificate then carries
// subject:organizationIdentifier, as S/MIME BR 7.1.4.2.5 requires).
func changeOrgID(e *Errors, prev string, v *string) string {
	const field = "changes.organization.identifier"
	if v == nil {
		return prev
	}
	if prev != "" {
		if NormalizeOrgID(*v) != prev {
			e.add(field, immutable)
		}
		return prev
	}
	return checkOrgID(e, field, v)
}

func override(dst **string, v *string) {
	if v != nil {
		*dst = v
	}
}

// CheckCoupon checks the renewal's coupon format (PC-2, PC-8: a renewal
// needs a new coupon).
func CheckCoupon(e *Errors, v *string) string {
	return e.text("coupon", v, true, 17, couponRe, "must be 8 digits, a hyphen and 8 digits")
}

// CheckReissueReason checks the reissue's reason.
func CheckReissueReason(e *Errors, v *string) string {
	r := e.text("reason", v, true, 32, nil, "")
	if r != "" && r != ReissueKeyCompromise && r != ReissueSuperseded {
		e.add("reason", `must be "key_compromise" (lost or compromised key: revoke now) or "superseded"`)
		return ""
	}
	return r
}
