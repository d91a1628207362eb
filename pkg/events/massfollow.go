package events

// Mass revocation follow-ups (OP-5).
//
//   - The issuer's CertificateRevoked that carries a subscriber's one
//     notice of a mass revocation lists every certificate of that
//     subscriber the mass revocation takes (Certificates, at most
//     MaxMassListed; CertificatesTotal counts them all), so the notifier
//     mails each subscriber once, naming them all.
//   - A revoked server certificate whose paid coverage goes on is offered
//     a free replacement by intake: the reissue of IS-4, always with a new
//     key; its CoverageCSRRequested names the mass revocation and its
//     reason (MassRevocationID, RevocationReason) so that the mail says
//     why.

// MaxMassListed bounds the certificates one notice lists (an event stays
// far below the bus's message size); the mail says how many more there are.
const MaxMassListed = 1000

// RevokedCertificate is one certificate in a subscriber's mass revocation
// notice: its serial, product and subject (the common name of a server
// certificate, the e-mail address of a client certificate).
type RevokedCertificate struct {
	Serial  string `json:"serial"`
	Product string `json:"product"`
	Subject string `json:"subject"`
}
