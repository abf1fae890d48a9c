package reconcile

import (
	"fmt"
	"strings"

	"github.com/paybatch/paybatch"
)

// A role is what a column means to reconciliation. Roles are the column
// names of the src_<n> view every input is read through (load.go).
const (
	roleID             = "merchant_transaction_id"
	roleAmount         = "amount"
	roleCurrency       = "currency"
	roleStatus         = "status"
	roleExpectedStatus = "expected_status"
	roleProviderID     = "transaction_id"
	roleType           = "type"
	roleDate           = "date"
	roleReason         = "reason"
)

// fileKind is which side of the reconciliation a file is.
type fileKind string

const (
	kindLedger  fileKind = "ledger"
	kindResults fileKind = "results"
)

// aliases maps a normalised header (lower case, letters and digits only) to
// its role, per kind of file. Matching ignores case, spaces and punctuation,
// so "Merchant Txn ID", "merchant_txn_id" and "MERCHANT-TXN-ID" are one header.
var aliases = map[fileKind]map[string]string{
	kindLedger: withCommon(map[string]string{
		"expectedstatus": roleExpectedStatus, "expected": roleExpectedStatus,
		"status": roleExpectedStatus, "ledgerstatus": roleExpectedStatus,
	}),
	kindResults: withCommon(map[string]string{
		"status": roleStatus, "providerstatus": roleStatus, "state": roleStatus, "result": roleStatus,
		"transactionid": roleProviderID, "providerid": roleProviderID, "txnid": roleProviderID,
		"paymentid": roleProviderID, "providertransactionid": roleProviderID,
		"reason": roleReason, "reasoncode": roleReason, "bacsreasoncode": roleReason,
	}),
}

func withCommon(m map[string]string) map[string]string {
	common := map[string]string{
		"merchanttransactionid": roleID, "merchanttxnid": roleID, "merchanttxid": roleID,
		"merchantreference": roleID, "merchantref": roleID, "reference": roleID, "ref": roleID,
		"customreference": roleID, "mtid": roleID,
		"amount": roleAmount, "amt": roleAmount, "grossamount": roleAmount, "value": roleAmount,
		"currency": roleCurrency, "ccy": roleCurrency, "cur": roleCurrency, "currencycode": roleCurrency,
		"type": roleType, "kind": roleType, "operation": roleType, "transactiontype": roleType, "txntype": roleType,
		"date": roleDate, "valuedate": roleDate, "transactiondate": roleDate, "bookingdate": roleDate,
		"collectiondate": roleDate,
	}
	for k, v := range m {
		common[k] = v
	}
	return common
}

// required lists the roles a file of each kind must have.
var required = map[fileKind][]string{
	kindLedger:  {roleID, roleAmount, roleCurrency},
	kindResults: {roleID, roleAmount, roleCurrency, roleStatus},
}

// headerMap is the result of matching a header row: the role of each column
// (or "" when the column is not used) and the original header per role, for
// error messages.
type headerMap struct {
	roles    []string          // per column index
	original map[string]string // role → header as written in the file
}

// mapHeader matches a header row against the aliases of kind. A missing
// required column or two columns claiming one role is an error naming the
// file and the headers found.
func mapHeader(kind fileKind, file, sheet string, header []string) (headerMap, error) {
	hm := headerMap{roles: make([]string, len(header)), original: map[string]string{}}
	src := paybatch.Source{File: file, Sheet: sheet, Row: 1}
	for i, h := range header {
		role, ok := aliases[kind][paybatch.HeaderKey(h)]
		if !ok {
			continue
		}
		if prev, dup := hm.original[role]; dup {
			return headerMap{}, &paybatch.RowError{Source: src, Column: h, Value: h,
				Err: fmt.Errorf("%w: columns %q and %q both mean %s; rename or remove one", paybatch.ErrBadField, prev, h, role)}
		}
		hm.roles[i] = role
		hm.original[role] = h
	}
	for _, role := range required[kind] {
		if _, ok := hm.original[role]; !ok {
			return headerMap{}, &paybatch.RowError{Source: src,
				Err: fmt.Errorf("%w: the %s has no %s column (headers found: %s); add one, e.g. %q",
					paybatch.ErrMissingColumn, kind, role, quoteList(header), role)}
		}
	}
	return hm, nil
}

// names returns the stage column name of every file column: its role, or a
// placeholder beginning with "_" for columns reconciliation does not use.
func (hm headerMap) names() []string {
	out := make([]string, len(hm.roles))
	for i, r := range hm.roles {
		if r == "" {
			r = fmt.Sprintf("_unused%d", i)
		}
		out[i] = r
	}
	return out
}

// column returns the header text of role as the file wrote it (the role name
// when the file has no such column).
func (hm headerMap) column(role string) string {
	if h, ok := hm.original[role]; ok {
		return h
	}
	return role
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
