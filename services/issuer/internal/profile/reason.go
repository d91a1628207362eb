package profile

// Revocation reasons (RFC 5280 5.3.1 CRLReason) the platform uses (IS-6):
// superseded for reissues, keyCompromise for lost keys, and the three an
// operator may choose. unspecified (0) is not offered: every revocation
// here has a known cause.
const (
	ReasonKeyCompromise        = "keyCompromise"
	ReasonAffiliationChanged   = "affiliationChanged"
	ReasonSuperseded           = "superseded"
	ReasonCessationOfOperation = "cessationOfOperation"
	ReasonPrivilegeWithdrawn   = "privilegeWithdrawn"
)

var reasonCodes = map[string]int{
	ReasonKeyCompromise:        1,
	ReasonAffiliationChanged:   3,
	ReasonSuperseded:           4,
	ReasonCessationOfOperation: 5,
	ReasonPrivilegeWithdrawn:   9,
}

// ReasonCode is the RFC 5280 code of a reason name; ok is false for an
// unknown name.
func ReasonCode(name string) (code int, ok bool) {
	code, ok = reasonCodes[name]
	return code, ok
}

// Reasons lists the accepted names (for error messages).
func Reasons() []string {
	return []string{ReasonSuperseded, ReasonKeyCompromise, ReasonCessationOfOperation,
		ReasonAffiliationChanged, ReasonPrivilegeWithdrawn}
}
