package smarterpay

import "strings"

// Bacs reports that carry a reason code, as SmarterPay names them in
// bacs_report (webhook vocabulary).
const (
	ReportARUDD  = "ARUDD"  // Automated Return of Unpaid Direct Debits
	ReportADDACS = "ADDACS" // Automated Direct Debit Amendment and Cancellation Service
	ReportAUDDIS = "AUDDIS" // Automated Direct Debit Instruction Service (rejected instructions)
	ReportARUCS  = "ARUCS"  // Automated Return of Unapplied Credits
)

// bacsReasons are the standard descriptions of the Bacs reason codes, per
// report (Bacs service user guides for ARUDD, ADDACS, AUDDIS and ARUCS).
var bacsReasons = map[string]map[string]string{
	ReportARUDD: {
		"0": "Refer to payer",
		"1": "Instruction cancelled",
		"2": "Payer deceased",
		"3": "Account transferred",
		"4": "Advance notice disputed",
		"5": "No account (or wrong account type)",
		"6": "No instruction",
		"7": "Amount differs",
		"8": "Amount not yet due",
		"9": "Presentation overdue",
		"A": "Service user differs",
		"B": "Account closed",
	},
	ReportADDACS: {
		"0": "Instruction cancelled – refer to payer",
		"1": "Instruction cancelled by payer",
		"2": "Payer deceased",
		"3": "Account transferred to a new bank or building society",
		"B": "Account closed",
		"C": "Account transferred to a new account at the same bank or building society",
		"D": "Advance notice disputed",
		"E": "Instruction amended",
		"R": "Instruction re-instated",
	},
	ReportAUDDIS: {
		"1": "Instruction cancelled by payer",
		"2": "Payer deceased",
		"3": "Account transferred",
		"5": "No account",
		"6": "No instruction",
		"B": "Account closed",
		"C": "Account transferred to a new account at the same bank or building society",
		"F": "Invalid account type",
		"G": "Bank will not accept Direct Debits on this account",
		"H": "Instruction has expired",
		"I": "Payer reference is not unique",
		"K": "Instruction cancelled by paying bank",
		"L": "Incorrect payer's account details",
		"M": "Transaction code or user status incompatible",
		"N": "Transaction disallowed at payer's branch",
		"O": "Invalid reference",
		"P": "Payer's name not present",
		"Q": "Service user's name blank",
	},
	ReportARUCS: {
		"2": "Beneficiary deceased",
		"3": "Account transferred",
		"5": "No account",
		"B": "Account closed",
	},
}

// BacsReason returns the standard description of a Bacs reason code in the
// named report ("" when the pair is unknown). The report name is matched
// without regard to case, and the legacy spelling ARRUD some SmarterPay
// clients receive is read as ARUDD.
func BacsReason(report, code string) string {
	report = strings.ToUpper(strings.TrimSpace(report))
	if report == "ARRUD" {
		report = ReportARUDD
	}
	return bacsReasons[report][strings.ToUpper(strings.TrimSpace(code))]
}
