// Package domain holds issuer rules that need no I/O.
package domain

import (
	"time"

	"github.com/certlife/platform/pkg/events"
)

// The renewal and reissue windows (PC-8, PC-11) are written here and
// nowhere else. The issuer owns them because it owns what they are
// computed from — the certificate it signed, its expiry and its
// revocation — and because it both lists certificates by eligibility and
// announces them: CertificateIssued carries the windows, so intake, which
// accepts renewal and reissue applications, compares the clock with the
// instants computed here instead of keeping a second copy of the rule.
const (
	renewalOpensBefore = 30 * 24 * time.Hour  // PC-8: from 30 days before expiry
	renewalClosesAfter = 365 * 24 * time.Hour // PC-8: until 365 days after expiry
	reissueClosesLeft  = 30 * 24 * time.Hour  // PC-11: not with 30 days or less left
)

// Windows are the renewal and reissue windows of a certificate expiring at notAfter.
func Windows(notAfter time.Time) events.Windows {
	notAfter = notAfter.UTC()
	return events.Windows{
		RenewalFrom:  notAfter.Add(-renewalOpensBefore),
		RenewalUntil: notAfter.Add(renewalClosesAfter),
		ReissueUntil: notAfter.Add(-reissueClosesLeft),
	}
}
