package readers

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/paybatch/paybatch"
)

// field is a canonical batch column.
type field int

const (
	fNone field = iota
	fMerchantTxID
	fAmount
	fCurrency
	fTerminal
	fTransactionRef
	fOrderRef
	fMandate
	fAuddis
	fBankAccount
	fCollectionDate
	fDescription
	fDefaultNarrative
	numFields
)

var fieldNames = [numFields]string{
	fNone:             "",
	fMerchantTxID:     "merchant_transaction_id",
	fAmount:           "amount",
	fCurrency:         "currency",
	fTerminal:         "terminal",
	fTransactionRef:   "transaction_reference_id",
	fOrderRef:         "order_reference_id",
	fMandate:          "mandate",
	fAuddis:           "auddis",
	fBankAccount:      "bank_account",
	fCollectionDate:   "collection_date",
	fDescription:      "description",
	fDefaultNarrative: "default_narrative",
}

func (f field) String() string { return fieldNames[f] }

// fieldNamed is the field of a canonical column name (fNone if unknown).
func fieldNamed(name string) field {
	for f, n := range fieldNames {
		if n == name && name != "" {
			return field(f)
		}
	}
	return fNone
}

// builtinAliases maps normalised header text (see normHeader) to a field.
// Every canonical name is its own alias.
var builtinAliases = map[string]field{
	"merchanttransactionid": fMerchantTxID, "merchanttxnid": fMerchantTxID, "merchanttxid": fMerchantTxID,
	"merchanttransactionref": fMerchantTxID, "merchantref": fMerchantTxID, "merchantreference": fMerchantTxID,
	"merchantid": fMerchantTxID, "mtid": fMerchantTxID, "reference": fMerchantTxID, "ref": fMerchantTxID,
	"customreference": fMerchantTxID, "yourreference": fMerchantTxID, "yourref": fMerchantTxID,

	"amount": fAmount, "amt": fAmount, "value": fAmount, "refundamount": fAmount, "captureamount": fAmount,
	"paymentamount": fAmount, "creditamount": fAmount, "collectionamount": fAmount,

	"currency": fCurrency, "ccy": fCurrency, "currencycode": fCurrency, "cur": fCurrency, "curr": fCurrency,

	"terminal": fTerminal, "terminalid": fTerminal, "terminalfriendlyid": fTerminal, "tid": fTerminal,

	"transactionreferenceid": fTransactionRef, "transactionreference": fTransactionRef,
	"transactionref": fTransactionRef, "txnref": fTransactionRef, "transactionid": fTransactionRef,
	"txnid": fTransactionRef, "txid": fTransactionRef, "originaltransactionid": fTransactionRef,

	"orderreferenceid": fOrderRef, "orderreference": fOrderRef, "orderref": fOrderRef, "orderid": fOrderRef,

	"mandate": fMandate, "mandateid": fMandate,

	"auddis": fAuddis, "auddisref": fAuddis, "auddisreference": fAuddis, "auddisid": fAuddis,
	"mandatereference": fAuddis,

	"bankaccount": fBankAccount, "bankaccountid": fBankAccount, "customerbankaccount": fBankAccount,

	"collectiondate": fCollectionDate, "creditdate": fCollectionDate, "duedate": fCollectionDate,
	"paymentdate": fCollectionDate, "date": fCollectionDate,

	"description": fDescription, "desc": fDescription, "memo": fDescription,

	"defaultnarrative": fDefaultNarrative, "narrative": fDefaultNarrative, "statementnarrative": fDefaultNarrative,
}

func fieldByName(name string) field {
	for f := fMerchantTxID; f < numFields; f++ {
		if fieldNames[f] == name {
			return f
		}
	}
	return fNone
}

// kindSpec lists which fields a kind requires and which it may use.
type kindSpec struct {
	required []field
	optional []field
	// oneOf: at least one of these columns must exist (dd kinds: mandate or auddis…).
	oneOf []field
}

func specFor(k paybatch.Kind) (kindSpec, error) {
	switch k {
	case paybatch.KindRefund, paybatch.KindCapture:
		return kindSpec{
			required: []field{fTerminal, fTransactionRef, fOrderRef, fMerchantTxID, fAmount, fCurrency},
		}, nil
	case paybatch.KindVoid:
		return kindSpec{
			required: []field{fTerminal, fTransactionRef, fOrderRef, fMerchantTxID},
		}, nil
	case paybatch.KindDDPayment:
		return kindSpec{
			required: []field{fMerchantTxID, fAmount, fCollectionDate},
			optional: []field{fCurrency, fDescription, fDefaultNarrative, fMandate, fAuddis},
			oneOf:    []field{fMandate, fAuddis},
		}, nil
	case paybatch.KindDDCredit:
		return kindSpec{
			required: []field{fMerchantTxID, fAmount, fCollectionDate, fDescription},
			optional: []field{fCurrency, fDefaultNarrative, fAuddis, fBankAccount},
			oneOf:    []field{fAuddis, fBankAccount},
		}, nil
	}
	return kindSpec{}, fmt.Errorf("%w: unknown batch kind %q (want one of refund, capture, void, dd-payment, dd-credit)",
		paybatch.ErrUnusableFile, k)
}

func (s kindSpec) uses(f field) bool {
	return slices.Contains(s.required, f) || slices.Contains(s.optional, f)
}

// columnMap is the result of matching a header row.
type columnMap struct {
	idx      [numFields]int    // column index per field, -1 if absent
	header   [numFields]string // the header text as written
	impliedC paybatch.Currency // from an "Amount (USD)" header
	unknown  []string
	width    int // number of header cells
}

// mapHeader matches header cells to the kind's fields. aliases (from a
// mapping file) take precedence over the built-in ones; both are matched on
// the normalised header text.
func mapHeader(cells []string, spec kindSpec, aliases map[string]field) (*columnMap, error) {
	cm := &columnMap{width: len(cells)}
	for i := range cm.idx {
		cm.idx[i] = -1
	}
	for i, h := range cells {
		n := paybatch.HeaderKey(h)
		if n == "" {
			continue
		}
		f, ok := aliases[n]
		if !ok {
			f = builtinAliases[n]
		}
		var implied paybatch.Currency
		if f == fNone && strings.HasPrefix(n, "amount") && len(n) == len("amount")+3 {
			if c, err := paybatch.ParseCurrency(n[len("amount"):]); err == nil {
				f, implied = fAmount, c
			}
		}
		if f == fNone || !spec.uses(f) {
			cm.unknown = append(cm.unknown, h)
			continue
		}
		if prev := cm.idx[f]; prev >= 0 {
			return nil, fmt.Errorf("%w: columns %q and %q both mean %s; remove or rename one (or map them with --mapping)",
				paybatch.ErrUnusableFile, cm.header[f], h, f)
		}
		cm.idx[f], cm.header[f] = i, h
		if !implied.IsZero() {
			cm.impliedC = implied
		}
	}
	var missing []string
	for _, f := range spec.required {
		if cm.idx[f] < 0 && (f != fCurrency || cm.impliedC.IsZero()) { // "Amount (USD)" carries the currency
			missing = append(missing, f.String())
		}
	}
	if len(spec.oneOf) > 0 {
		found := false
		var names []string
		for _, f := range spec.oneOf {
			found = found || cm.idx[f] >= 0
			names = append(names, f.String())
		}
		if !found {
			missing = append(missing, strings.Join(names, " or "))
		}
	}
	if len(missing) > 0 {
		var found []string
		for _, h := range cells {
			if strings.TrimSpace(h) != "" {
				found = append(found, fmt.Sprintf("%q", h))
			}
		}
		return nil, fmt.Errorf("%w %s; headers found: %s; rename a column (matching ignores case, spaces and punctuation) or map it with --mapping",
			paybatch.ErrMissingColumn, strings.Join(missing, ", "), strings.Join(found, ", "))
	}
	return cm, nil
}

// LoadMapping reads a YAML mapping file that names columns the built-in
// aliases do not know. The format is one map under the key "columns", from
// the header as written in the batch to a canonical field name:
//
//	columns:
//	  "Cust Ref": merchant_transaction_id
//	  "Value GBP": amount
//	  "Due": collection_date
//
// Headers are matched like built-in aliases (case, spaces and punctuation
// ignored). Canonical names: merchant_transaction_id, amount, currency,
// terminal, transaction_reference_id, order_reference_id, mandate, auddis,
// bank_account, collection_date, description, default_narrative.
func LoadMapping(r io.Reader) (map[string]string, error) {
	var doc struct {
		Columns map[string]string `yaml:"columns"`
	}
	dec := yaml.NewDecoder(io.LimitReader(r, 1<<20))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("mapping file is empty; want a \"columns:\" map of header → field")
		}
		return nil, fmt.Errorf("mapping file: %w (want a \"columns:\" map of header → field)", err)
	}
	if len(doc.Columns) == 0 {
		return nil, fmt.Errorf("mapping file has no \"columns:\" entries")
	}
	for h, name := range doc.Columns {
		if fieldByName(name) == fNone {
			return nil, fmt.Errorf("mapping file: column %q maps to unknown field %q (want one of %s)",
				h, name, strings.Join(fieldNames[1:], ", "))
		}
		if paybatch.HeaderKey(h) == "" {
			return nil, fmt.Errorf("mapping file: header %q has no letters or digits", h)
		}
	}
	return doc.Columns, nil
}

func compileAliases(m map[string]string) (map[string]field, error) {
	out := make(map[string]field, len(m))
	for h, name := range m {
		f := fieldByName(name)
		if f == fNone {
			return nil, fmt.Errorf("%w: mapping: unknown field %q for column %q", paybatch.ErrUnusableFile, name, h)
		}
		out[paybatch.HeaderKey(h)] = f
	}
	return out, nil
}
