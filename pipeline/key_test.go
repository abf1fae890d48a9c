package pipeline

import (
	"regexp"
	"testing"

	"github.com/paybatch/paybatch"
)

func TestKeyStableIdentityOnly(t *testing.T) {
	base := refunds(1)[0]
	k := Key(base)
	if !regexp.MustCompile(`^pb1-[0-9a-f]{64}$`).MatchString(k) || len(k) > 255 {
		t.Fatalf("key %q: want pb1- + 64 hex", k)
	}
	same := base
	same.Amount.Minor = 999
	same.Source = paybatch.Source{File: "other.xlsx", Sheet: "S", Row: 99}
	same.Description = "changed"
	if Key(same) != k {
		t.Error("key depends on amount, source or description")
	}
	for name, mod := range map[string]func(*paybatch.Instruction){
		"mtid":     func(in *paybatch.Instruction) { in.MerchantTxID += "x" },
		"kind":     func(in *paybatch.Instruction) { in.Kind = paybatch.KindCapture },
		"terminal": func(in *paybatch.Instruction) { in.Terminal = "TERM02" },
		"provider": func(in *paybatch.Instruction) { in.Provider = paybatch.SmarterPay },
	} {
		in := base
		mod(&in)
		if Key(in) == k {
			t.Errorf("changing %s keeps the key", name)
		}
	}
	// Golden: keys are a contract with journals already on disk.
	if k != "pb1-"+goldenKey {
		t.Errorf("key derivation changed: %s (bump KeyVersion instead)", k)
	}
}

const goldenKey = "ba83122d44f07acebaa5854b38fd7d0976d2ffe230a79c42059452ab831cc37f"
