package pipeline

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/paybatch/paybatch"
)

// KeyVersion prefixes every idempotency key. Changing how keys are derived
// requires a new version so old journals keep their keys.
const KeyVersion = "pb1"

// Key is the idempotency key of an instruction. It depends only on the
// operation's stable identity — provider, account (terminal, mandate, …),
// kind and merchant_transaction_id — never on file name, row position, time
// or attempt, so an edited row keeps its key and the provider (and the
// journal) can tell it apart from a retry. The result is "pb1-" followed by
// 64 lowercase hex digits: valid for both providers (letters, digits, '-',
// '_'; ≤ 255 characters) and case-insensitive-safe.
func Key(in paybatch.Instruction) string {
	provider := in.Provider
	if provider == "" {
		provider = in.Kind.Provider()
	}
	h := sha256.New()
	for _, part := range []string{KeyVersion, string(provider), in.Account(), string(in.Kind), in.MerchantTxID} {
		// Length-prefix each part so ("ab","c") and ("a","bc") differ.
		var n [4]byte
		l := len(part)
		n[0], n[1], n[2], n[3] = byte(l>>24), byte(l>>16), byte(l>>8), byte(l)
		h.Write(n[:])
		h.Write([]byte(part))
	}
	return KeyVersion + "-" + hex.EncodeToString(h.Sum(nil))
}

// bodyHash is the hex SHA-256 of a canonical request body.
func bodyHash(body []byte) string {
	s := sha256.Sum256(body)
	return hex.EncodeToString(s[:])
}
