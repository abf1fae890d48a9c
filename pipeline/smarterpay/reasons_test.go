package smarterpay

import "testing"

func TestBacsReason(t *testing.T) {
	for _, tc := range []struct{ report, code, want string }{
		{"ARUDD", "0", "Refer to payer"},
		{"ARUDD", "1", "Instruction cancelled"},
		{"ARUDD", "B", "Account closed"},
		{"arudd", "b", "Account closed"},
		{"ARRUD", "6", "No instruction"}, // the legacy spelling some clients receive
		{"ADDACS", "1", "Instruction cancelled by payer"},
		{"ADDACS", "C", "Account transferred to a new account at the same bank or building society"},
		{"ADDACS", "R", "Instruction re-instated"},
		{"AUDDIS", "5", "No account"},
		{"AUDDIS", "F", "Invalid account type"},
		{"AUDDIS", "L", "Incorrect payer's account details"},
		{"ARUCS", "2", "Beneficiary deceased"},
		{"ARUDD", "Z", ""},
		{"DDICA", "1", ""},
		{"", "0", ""},
	} {
		if got := BacsReason(tc.report, tc.code); got != tc.want {
			t.Errorf("BacsReason(%q, %q) = %q, want %q", tc.report, tc.code, got, tc.want)
		}
	}
}

// TestStatusDescribesBacsCodes: a failed record with a bare code gets the
// standard description; the provider's own text wins when it sends one; a
// success carries no reason.
func TestStatusDescribesBacsCodes(t *testing.T) {
	for _, tc := range []struct {
		r                 record
		code, detail, raw string
	}{
		{record{Status: StatusFailed, BacsReport: "ARUDD", BacsReasonCode: "B"}, "ARUDD B", "Account closed", StatusFailed},
		{record{Status: StatusFailed, BacsReport: "ARRUD", BacsReasonCode: "0"}, "ARUDD 0", "Refer to payer", StatusFailed},
		{record{Status: StatusFailed, BacsReport: "ADDACS", BacsReasonCode: "1", BacsDescription: "Cancelled by the payer online"}, "ADDACS 1", "Cancelled by the payer online", StatusFailed},
		{record{Status: StatusSuccessful}, "", "", StatusSuccessful},
	} {
		st := statusOf(tc.r)
		if st.ReasonCode != tc.code || st.Detail != tc.detail || st.Raw != tc.raw {
			t.Errorf("statusOf(%+v) = %+v; want %q %q", tc.r, st, tc.code, tc.detail)
		}
	}
}
