package smtpsend

import (
	"mime"
	"strings"
	"testing"
	"unicode/utf8"
)

// NO-1, NO-2: a subject is encoded so that it decodes to exactly itself
// (no leading space, nothing lost at a fold), with the first encoded word
// on the Subject line and no line over RFC 2047's 76 characters. (The
// SMTP test in the package above checks the same on real messages with
// Go's net/mail and Python's email parsers.)
func TestEncodeSubjectRoundTrips_NO1(t *testing.T) {
	for _, s := range []string{
		"【Certlife】新規申請の仮受付完了のお知らせ",
		"Certlife クライアント証明書 再発行に伴う証明書コードのご案内",
		"Certlife client certificate: your new certificate code after the reissue (a long English subject line)",
		"短い",
		"Certlife: your application has been received",
		"Mixed 日本語 and English, with 😀 outside the BMP and 𠮷",
		strings.Repeat("証", 80),
		"=?UTF-8?B?not really?= plain ASCII",
		"",
	} {
		v := EncodeSubject(s)
		lines := strings.Split(v, "\r\n")
		for i, l := range lines {
			n := len(l)
			if i == 0 {
				n += len("Subject: ")
				if strings.HasPrefix(l, " ") || (l == "" && s != "") {
					t.Errorf("%q: the value starts with white space or a fold: %q", s, v)
				}
			} else if !strings.HasPrefix(l, " ") {
				t.Errorf("%q: continuation line %q does not start with a space", s, l)
			}
			if n > 76 && strings.Contains(l, "=?") {
				t.Errorf("%q: line %d is %d characters: %q", s, i, n, l)
			}
			if !utf8.ValidString(l) || strings.ContainsFunc(l, func(r rune) bool { return r > 0x7e }) {
				t.Errorf("%q: a header line is not ASCII: %q", s, l)
			}
		}
		unfolded := strings.ReplaceAll(v, "\r\n", "")
		got, err := new(mime.WordDecoder).DecodeHeader(unfolded)
		if err != nil || got != s {
			t.Errorf("%q: decodes to %q (%v) from %q", s, got, err, v)
		}
	}
}
