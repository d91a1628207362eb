package smtpsend

import (
	"encoding/base64"
	"strings"
	"unicode/utf8"
)

// A header line holding encoded words has at most 76 characters (RFC
// 2047 2); the first one starts with "Subject: ".
const (
	subjectLabel = len("Subject: ")
	// maxWordBytes is the UTF-8 bytes per encoded word: 39 bytes are 52
	// base64 characters, 64 with "=?UTF-8?B?" and "?=", which fits the
	// first line after "Subject: " (73) and every continuation line (65).
	maxWordBytes = 39
)

// EncodeSubject returns the value of a Subject header (after "Subject: ")
// for s. Printable ASCII that fits the Subject line (78 characters, RFC
// 5322 2.1.1) stays as it is. Anything else — other characters, a longer
// subject, or ASCII holding "=?" — becomes RFC 2047 "B" encoded words of
// whole UTF-8 characters, folded with CRLF + space between words. The
// first word is always on the Subject line itself, so no parser sees the
// value start with folding white space; the white space between encoded
// words is ignored when they are decoded (RFC 2047 6.2), and a parser
// that does not unfold (Python's compat32) still decodes them whole — so
// the subject decodes exactly to s. (A folded plain-ASCII subject would
// keep its CRLF in such a parser.)
func EncodeSubject(s string) string {
	if printableASCII(s) && !strings.Contains(s, "=?") && subjectLabel+len(s) <= 78 {
		return s
	}
	var words []string
	for len(s) > 0 {
		n := 0
		for n < len(s) {
			_, size := utf8.DecodeRuneInString(s[n:])
			if n+size > maxWordBytes {
				break
			}
			n += size
		}
		words = append(words, "=?UTF-8?B?"+base64.StdEncoding.EncodeToString([]byte(s[:n]))+"?=")
		s = s[n:]
	}
	return strings.Join(words, "\r\n ")
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
