package ca

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Purpose is what an issuing CA is for. IS-11: one issuing CA per
// purpose, and a certificate is never issued by the other purpose's CA.
type Purpose string

const (
	// PurposeSMIME is the S/MIME issuing CA (client certificates, PC-17).
	PurposeSMIME Purpose = "smime"
	// PurposeTLS is the TLS issuing CA (server certificates). The layer
	// knows its rules so that a TLS CA slots in; the dev hierarchy makes
	// one only when asked (Options.Purposes).
	PurposeTLS Purpose = "tls"
)

// DevSlug is the issuer name a dev hierarchy gives a purpose's CA. The
// S/MIME CA keeps "ica1", the name it has had since the first release:
// certificates, CRLs, timers and events already carry it, and issued
// certificates point at /crl/ica1.crl.
func DevSlug(p Purpose) string {
	switch p {
	case PurposeSMIME:
		return "ica1"
	case PurposeTLS:
		return "tls1"
	}
	return ""
}

// Policy OID arcs of the CA/B Forum (7.1.6.1 of each BR).
const (
	smimePolicyArc = "2.23.140.1.5."
	tlsPolicyArc   = "2.23.140.1.2."
)

// ErrWrongPurpose: a certificate asked of an issuing CA does not belong to
// that CA's purpose (IS-11). Nothing is signed.
var ErrWrongPurpose = errors.New("ca: certificate does not fit the issuing CA's purpose")

// purposeOf reads an issuing CA certificate's purpose from its extended
// key usages: emailProtection without serverAuth is S/MIME, serverAuth
// without emailProtection is TLS. A CA with both, neither, or
// anyExtendedKeyUsage serves no single purpose and is refused.
func purposeOf(c *x509.Certificate) (Purpose, error) {
	has := func(u x509.ExtKeyUsage) bool { return slices.Contains(c.ExtKeyUsage, u) }
	if has(x509.ExtKeyUsageAny) {
		return "", errors.New("an issuing CA must not carry anyExtendedKeyUsage (IS-11)")
	}
	switch email, server := has(x509.ExtKeyUsageEmailProtection), has(x509.ExtKeyUsageServerAuth); {
	case email && !server:
		return PurposeSMIME, nil
	case server && !email:
		return PurposeTLS, nil
	case email && server:
		return "", errors.New("an issuing CA must not carry both emailProtection and serverAuth (IS-11)")
	default:
		return "", errors.New("an issuing CA must carry emailProtection (S/MIME) or serverAuth (TLS) in its extended key usage")
	}
}

// checkPurpose refuses a template that does not belong to purpose p
// (IS-10, IS-11). It looks at what defines a certificate's purpose —
// extended key usages, the CA/B Forum policy OID and the kinds of
// subject alternative names — and leaves the rest of the profile to zlint.
func checkPurpose(p Purpose, tpl *x509.Certificate) error {
	if tpl.IsCA {
		return fmt.Errorf("%w: issuing CAs sign subscriber certificates only", ErrWrongPurpose)
	}
	if len(tpl.UnknownExtKeyUsage) > 0 || slices.Contains(tpl.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return fmt.Errorf("%w: unknown or any extended key usage", ErrWrongPurpose)
	}
	var arc string
	switch p {
	case PurposeSMIME:
		// SBR 7.1.2.3 f: emailProtection required; clientAuth allowed
		// beside it (multipurpose); nothing of another purpose.
		for _, u := range tpl.ExtKeyUsage {
			if u != x509.ExtKeyUsageEmailProtection && u != x509.ExtKeyUsageClientAuth {
				return fmt.Errorf("%w: the S/MIME CA does not sign extended key usage %d", ErrWrongPurpose, u)
			}
		}
		if !slices.Contains(tpl.ExtKeyUsage, x509.ExtKeyUsageEmailProtection) {
			return fmt.Errorf("%w: an S/MIME certificate needs emailProtection", ErrWrongPurpose)
		}
		if len(tpl.DNSNames) > 0 || len(tpl.IPAddresses) > 0 || len(tpl.URIs) > 0 {
			return fmt.Errorf("%w: an S/MIME certificate names mailboxes only", ErrWrongPurpose)
		}
		arc = smimePolicyArc
	case PurposeTLS:
		// IS-10: serverAuth only.
		if len(tpl.ExtKeyUsage) != 1 || tpl.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
			return fmt.Errorf("%w: a TLS certificate carries serverAuth only (IS-10)", ErrWrongPurpose)
		}
		if len(tpl.EmailAddresses) > 0 {
			return fmt.Errorf("%w: a TLS certificate names no mailbox", ErrWrongPurpose)
		}
		arc = tlsPolicyArc
	default:
		return fmt.Errorf("%w: unknown purpose %q", ErrWrongPurpose, p)
	}
	found := 0
	for _, oid := range tpl.Policies {
		s := oid.String()
		if strings.HasPrefix(s, arc) {
			found++
		} else if strings.HasPrefix(s, "2.23.140.1.") {
			return fmt.Errorf("%w: policy %s belongs to another purpose", ErrWrongPurpose, s)
		}
	}
	if found != 1 {
		return fmt.Errorf("%w: exactly one %s* policy OID is required, found %d", ErrWrongPurpose, arc, found)
	}
	return nil
}
