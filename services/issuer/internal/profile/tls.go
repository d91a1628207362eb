package profile

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
	"unicode/utf8"
)

// OrganizationValidated is the CA/B Forum policy OID of an OV TLS
// certificate (TLS BR §7.1.6.1): 2.23.140.1.2.2.
var OrganizationValidated = mustOID(2, 23, 140, 1, 2, 2)

// Subject attribute types of a server certificate beyond those above.
var (
	oidLocality = asn1.ObjectIdentifier{2, 5, 4, 7}
	oidState    = asn1.ObjectIdentifier{2, 5, 4, 8}
)

// RFC 6962 extensions.
var (
	// OIDCTPoison marks a precertificate (RFC 6962 §3.1): critical, NULL.
	OIDCTPoison = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 3}
	// OIDSCTList holds the embedded SCTs (RFC 6962 §3.3).
	OIDSCTList = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}
)

// PoisonExtension is the precertificate poison (RFC 6962 §3.1).
func PoisonExtension() pkix.Extension {
	return pkix.Extension{Id: OIDCTPoison, Critical: true, Value: asn1.NullBytes}
}

// ServerSubject is what an OV server certificate's subject names (TLS BR
// §7.1.2.7.4): the common name and the organization's English record in
// the registry — name, locality, state or prefecture, country. Never an
// organizational unit (BR §7.1.2.7.4: MUST NOT since 2022-09-01).
type ServerSubject struct {
	CommonName   string
	Organization string
	Locality     string
	State        string
	Country      string
}

// Upper bounds of X.520 (RFC 5280 Appendix A).
const (
	ubCommonName   = 64
	ubOrganization = 64
	ubLocality     = 128
	ubState        = 128
)

// ErrServerSubject: the application's data cannot make a conforming subject.
var ErrServerSubject = errors.New("subject")

func (s ServerSubject) check() error {
	for _, f := range []struct {
		name, value string
		max         int
	}{
		{"common name", s.CommonName, ubCommonName},
		{"organization name", s.Organization, ubOrganization},
		{"locality", s.Locality, ubLocality},
		{"state or prefecture", s.State, ubState},
	} {
		if n := utf8.RuneCountInString(f.value); n > f.max {
			return fmt.Errorf("%w: the %s has %d characters; at most %d fit a certificate", ErrServerSubject, f.name, n, f.max)
		}
		if strings.TrimSpace(f.value) != f.value {
			return fmt.Errorf("%w: the %s has surrounding spaces", ErrServerSubject, f.name)
		}
	}
	if s.Organization == "" {
		return fmt.Errorf("%w: the organization's English name is missing", ErrServerSubject)
	}
	if s.Locality == "" && s.State == "" {
		return fmt.Errorf("%w: the organization's address has neither a locality nor a state or prefecture", ErrServerSubject)
	}
	if len(s.Country) != 2 || strings.ToUpper(s.Country) != s.Country || strings.Trim(s.Country, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		return fmt.Errorf("%w: the country %q is not an ISO 3166-1 alpha-2 code", ErrServerSubject, s.Country)
	}
	return nil
}

// serverSubjectDER encodes the subject, one attribute per RDN, in the
// order of TLS BR §7.1.4.2: countryName, stateOrProvinceName,
// localityName, organizationName, commonName.
func serverSubjectDER(s ServerSubject) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	var rdns pkix.RDNSequence
	add := func(t asn1.ObjectIdentifier, v string) {
		if v != "" {
			rdns = append(rdns, pkix.RelativeDistinguishedNameSET{{Type: t, Value: v}})
		}
	}
	add(oidCountry, s.Country)
	add(oidState, s.State)
	add(oidLocality, s.Locality)
	add(oidOrganization, s.Organization)
	add(oidCommonName, s.CommonName)
	return asn1.Marshal(rdns)
}

// ServerTemplate builds an OV TLS subscriber certificate before signing
// (TLS BR §7.1.2.7, IS-10):
//
//   - subject: C, ST, L, O, CN (ServerSubject); CN is one of the names;
//   - SAN: the names as dNSNames, the common name first;
//   - EKU serverAuth only (IS-10: the Chrome Root Program's rule from
//     2027-03-15, applied now);
//   - key usage digitalSignature, + keyEncipherment for RSA keys;
//   - certificatePolicies 2.23.140.1.2.2 alone (no qualifiers);
//   - CRL distribution point and AIA caIssuers over plain http;
//   - basicConstraints CA:false; no subject key identifier (BR
//     §7.1.2.7.6: NOT RECOMMENDED for subscriber certificates).
//
// The same inputs always give the same template, so a precertificate and
// its final certificate differ only in the extension the caller adds:
// the poison, or the SCT list.
func ServerTemplate(s ServerSubject, names []string, serial *big.Int, notBefore, notAfter time.Time,
	pub crypto.PublicKey, u URLs) (*x509.Certificate, error) {
	if len(names) == 0 || names[0] != s.CommonName {
		return nil, fmt.Errorf("%w: the common name must be the first of the certificate's names", ErrServerSubject)
	}
	raw, err := serverSubjectDER(s)
	if err != nil {
		return nil, err
	}
	ku := x509.KeyUsageDigitalSignature
	if _, isRSA := pub.(*rsa.PublicKey); isRSA {
		ku |= x509.KeyUsageKeyEncipherment
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		RawSubject:            raw,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              ku,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		DNSNames:              append([]string(nil), names...),
		Policies:              []x509.OID{OrganizationValidated},
		CRLDistributionPoints: []string{u.CRL},
		IssuingCertificateURL: []string{u.CAIssuers},
	}, nil
}
