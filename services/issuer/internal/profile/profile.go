// Package profile is the issuer's certificate policy for client
// certificates: the S/MIME BR profile of the template, the validity rules
// (PC-15, PC-11, IS-4), the subscriber key rules for CSRs, and the
// revocation reasons (IS-6).
//
// Profile: S/MIME BR "Sponsor-validated, Multipurpose" (policy OID
// 2.23.140.1.5.3.2). Sponsor-validated because the subject is an
// individual named together with the organization that employs them
// (the organization sponsors the person); Multipurpose because the
// certificate also carries clientAuth beside emailProtection, which the
// Strict generation forbids; Legacy may no longer be issued.
package profile

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"time"
)

// SponsorValidatedMultipurpose is the S/MIME BR policy OID of the profile.
var SponsorValidatedMultipurpose = mustOID(2, 23, 140, 1, 5, 3, 2)

func mustOID(arcs ...uint64) x509.OID {
	oid, err := x509.OIDFromInts(arcs)
	if err != nil {
		panic(err)
	}
	return oid
}

// Subject attribute types beyond those pkix.Name knows.
var (
	oidCountry                = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidOrganization           = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOrganizationIdentifier = asn1.ObjectIdentifier{2, 5, 4, 97}
	oidSurname                = asn1.ObjectIdentifier{2, 5, 4, 4}
	oidGivenName              = asn1.ObjectIdentifier{2, 5, 4, 42}
	oidCommonName             = asn1.ObjectIdentifier{2, 5, 4, 3}
)

// MaxValidity is the S/MIME BR cap (SBR 6.3.2, IS-4 client): 825 days.
// RFC 5280 counts validity inclusively, so not_after is one second short
// of not_before + 825 days.
const MaxValidity = 825 * 24 * time.Hour

// Country of every subject: the platform validates Japanese organizations.
const Country = "JP"

// Subject is what a client certificate names: the applicant and the
// organization, from the approved application.
type Subject struct {
	NameEn         string `json:"name_en"`
	OrganizationEn string `json:"organization_en"`
	// OrganizationIdentifier is the organization's registration reference
	// in the SBR 7.1.4.2.2 d form ("NTRJP-" + corporate number,
	// "LEIXG-" + LEI, …), verified at review (PC-1). Empty for
	// applications made before intake collected it.
	OrganizationIdentifier string `json:"organization_identifier,omitempty"`
	Email                  string `json:"email"`
}

// URLs are the public locations a certificate points to.
type URLs struct {
	CRL       string // CRL distribution point
	CAIssuers string // AIA caIssuers: the issuing CA's certificate, DER
}

// SplitName reads an English name in Japanese order — family name first,
// as in the SPEC's example ("Veri Taro" for 辺利 太郎) and the Japanese
// government's convention for romanized names since 2020 — into
// (surname, givenName). A one-word name is a surname alone (SBR
// 7.1.4.2.2 e: a single legal name goes in surname).
func SplitName(nameEn string) (surname, given string) {
	f := strings.Fields(nameEn)
	switch len(f) {
	case 0:
		return "", ""
	case 1:
		return f[0], ""
	default:
		return f[0], strings.Join(f[1:], " ")
	}
}

// orgIDForm is SBR 7.1.4.2.2 d: a 3-letter registration scheme, a 2-letter
// ISO 3166-1 country (XG for the global scheme LEI), an optional "+" and
// 1–3 character subdivision, a hyphen, and the registration reference;
// or, for entities without one (Note 2), GOV + country (+ subdivision) or
// INTXG, with nothing after them.
var orgIDForm = regexp.MustCompile(`^((NTR|VAT|PSD|LEI)[A-Z]{2}(\+[A-Z0-9]{1,3})?-[A-Za-z0-9./-]{1,64}|GOV[A-Z]{2}(\+[A-Z0-9]{1,3})?|INTXG)$`)

// ErrOrganizationIdentifier: the identifier is not in the SBR form; the
// certificate is not made.
var ErrOrganizationIdentifier = errors.New("organizationIdentifier is not in the S/MIME BR 7.1.4.2.2 form")

// Template builds the certificate for subject, before signing (PC-17,
// S/MIME BR v1.0.16 sponsor-validated multipurpose):
//
//   - subject (SBR 7.1.4.2.2, in this order): countryName JP,
//     organizationName, organizationIdentifier (when the application has
//     one), surname and givenName (7.1.4.2.5: a multipurpose SV
//     certificate names a person), commonName = the personal name;
//   - SAN: the mailbox as rfc822Name, nothing else;
//   - EKU emailProtection + clientAuth;
//   - key usage digitalSignature, + keyEncipherment for RSA keys (key
//     transport for encrypted mail);
//   - certificatePolicies 2.23.140.1.5.3.2;
//   - CRL distribution point and AIA caIssuers over plain http (the
//     caIssuers URL serves DER).
func Template(s Subject, serial *big.Int, notBefore, notAfter time.Time, pub crypto.PublicKey, u URLs) (*x509.Certificate, error) {
	raw, err := subjectDER(s)
	if err != nil {
		return nil, err
	}
	ku := x509.KeyUsageDigitalSignature
	if _, isRSA := pub.(*rsa.PublicKey); isRSA {
		ku |= x509.KeyUsageKeyEncipherment
	}
	tpl := &x509.Certificate{
		SerialNumber:          serial,
		RawSubject:            raw,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              ku,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		Policies:              []x509.OID{SponsorValidatedMultipurpose},
		CRLDistributionPoints: []string{u.CRL},
		IssuingCertificateURL: []string{u.CAIssuers},
	}
	if s.Email != "" {
		tpl.EmailAddresses = []string{s.Email}
	}
	tpl.SubjectKeyId = KeyID(pub)
	return tpl, nil
}

// subjectDER encodes the subject name, one attribute per RDN, in the
// order Template documents. Strings are PrintableString when they can be,
// else UTF8String (SBR 7.1.4.2.2 d allows both for organizationIdentifier).
func subjectDER(s Subject) ([]byte, error) {
	var rdns pkix.RDNSequence
	add := func(t asn1.ObjectIdentifier, v string) {
		if v != "" {
			rdns = append(rdns, pkix.RelativeDistinguishedNameSET{{Type: t, Value: v}})
		}
	}
	add(oidCountry, Country)
	add(oidOrganization, s.OrganizationEn)
	if id := s.OrganizationIdentifier; id != "" {
		if !orgIDForm.MatchString(id) {
			return nil, fmt.Errorf("%w: %q", ErrOrganizationIdentifier, id)
		}
		add(oidOrganizationIdentifier, id)
	}
	surname, given := SplitName(s.NameEn)
	add(oidSurname, surname)
	add(oidGivenName, given)
	add(oidCommonName, s.NameEn)
	return asn1.Marshal(rdns)
}

// KeyID is the subject key identifier of pub: the leftmost 160 bits of the
// SHA-256 of the subjectPublicKey bits (RFC 7093 method 1), so no SHA-1.
func KeyID(pub crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil
	}
	sum := sha256.Sum256(spki.PublicKey.Bytes)
	return sum[:20]
}

// Errors of the validity policy.
var (
	ErrPreviousNotIssued = errors.New("the previous certificate was never issued")
	ErrPreviousExpired   = errors.New("the previous certificate has expired: apply for a renewal instead")
)

// Validity computes (not_before, not_after) of a client certificate made
// at now (PC-15): not_before = now; a new certificate runs for term; a
// renewal chains on: max(now, previous not_after) + term; a reissue keeps
// the previous certificate's not_after (PC-11). Always capped at 825 days
// (IS-4). prevNotAfter is zero when there is no previous certificate.
func Validity(kind string, now, prevNotAfter time.Time, term time.Duration) (time.Time, time.Time, error) {
	nb := now.UTC().Truncate(time.Second)
	var na time.Time
	switch kind {
	case "renewal":
		base := nb
		if prevNotAfter.After(base) {
			base = prevNotAfter.UTC()
		}
		na = base.Add(term)
	case "reissue":
		if prevNotAfter.IsZero() {
			return nb, na, ErrPreviousNotIssued
		}
		na = prevNotAfter.UTC()
		if !na.After(nb) {
			return nb, na, ErrPreviousExpired
		}
	default:
		na = nb.Add(term)
	}
	if limit := nb.Add(MaxValidity - time.Second); na.After(limit) {
		na = limit
	}
	return nb, na, nil
}

// Key rules for subscriber keys (SV-6 / S/MIME BR 6.1.5): RSA of 2048 to
// 8192 bits with a public exponent of at least 65537, or ECDSA on P-256 or
// P-384. Anything else is refused.
func CheckPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		bits := k.N.BitLen()
		if bits < 2048 {
			return errors.New("RSA keys must have at least 2048 bits")
		}
		if bits > 8192 {
			return errors.New("RSA keys of more than 8192 bits are not accepted")
		}
		if k.E < 65537 || k.E%2 == 0 {
			return errors.New("the RSA public exponent must be odd and at least 65537")
		}
		return nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return errors.New("ECDSA keys must be on P-256 or P-384")
		}
		return nil
	default:
		return errors.New("only RSA (2048 bits or more) and ECDSA P-256/P-384 keys are accepted")
	}
}
