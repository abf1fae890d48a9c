package paybatch

import (
	"strings"
	"unicode"
)

// HeaderKey is the form in which column headers are compared everywhere
// (batches, ledgers, results files): lower-case letters and digits only, so
// "Merchant Txn ID", "merchant_txn_id" and "MERCHANT-TXN-ID" are one header.
func HeaderKey(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case unicode.IsLetter(r):
			b.WriteRune(unicode.ToLower(r))
		case unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
