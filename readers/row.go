package readers

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/paybatch/paybatch"
)

// maxMerchantTxID bounds merchant_transaction_id for every provider (the
// journal's key; SmartRetry documents ≤ 100 characters).
const maxMerchantTxID = 100

// gbp is the currency a Direct Debit row without a currency column is in:
// Bacs moves pounds only (the provider's rules refuse any other).
var gbp = paybatch.MustCurrency("GBP")

// rowCtx collects the problems of one row.
type rowCtx struct {
	b     *Batch
	cc    *curCache
	src   paybatch.Source
	cells []cell
	errs  []paybatch.RowError
}

// fail records a problem of the row. The value is copied: a cell's text
// shares its memory with the rest of its block of the file (see
// csvSource), which a kept reject must not hold on to.
func (r *rowCtx) fail(f field, value string, err error) {
	r.errs = append(r.errs, paybatch.RowError{Source: r.src, Column: r.b.colName(f), Value: strings.Clone(value), Err: err})
}

func (b *Batch) colName(f field) string {
	if f == fNone {
		return ""
	}
	if b.cm.idx[f] >= 0 {
		return b.cm.header[f]
	}
	return f.String()
}

// get returns the cell of field f in this row (zero cell if the column is
// absent or the row is short).
func (b *Batch) get(cells []cell, f field) (cell, bool) {
	i := b.cm.idx[f]
	if i < 0 {
		return cell{}, false
	}
	if i >= len(cells) {
		return cell{}, true
	}
	return cells[i], true
}

// text returns the trimmed text of a cell. A numeric cell in a text column
// (an id typed as a number) is rendered as the exact decimal it holds, so
// 12345 stays "12345" and 1.2345E+5 becomes "123450". (Leading zeros that
// the spreadsheet already dropped cannot be recovered; text cells keep them.)
func cellText(c cell) string {
	if c.num {
		if d, err := decimal.NewFromString(strings.TrimSpace(c.s)); err == nil {
			return d.String()
		}
	}
	if n := len(c.s); n > 0 && c.s[0] > ' ' && c.s[n-1] > ' ' && c.s[0] < utf8.RuneSelf && c.s[n-1] < utf8.RuneSelf {
		return c.s // nothing to trim: the common case
	}
	return strings.TrimSpace(c.s)
}

// parseRow validates one data row. It returns the instruction, the row's
// merchant_transaction_id (as read, even when the row is rejected, for
// duplicate detection; "" if unusable), and the row's problems appended to
// errs.
func (b *Batch) parseRow(row int, cells []cell, errs []paybatch.RowError) (paybatch.Instruction, string, []paybatch.RowError) {
	return b.parseRowWith(&b.cc, row, cells, errs)
}

// parseRowWith is parseRow with the currency cache cc: two goroutines
// may parse rows of one batch at once, each with its own cache.
func (b *Batch) parseRowWith(cc *curCache, row int, cells []cell, errs []paybatch.RowError) (paybatch.Instruction, string, []paybatch.RowError) {
	r := rowCtx{b: b, cc: cc, src: paybatch.Source{File: b.path, Sheet: b.sheet, Row: row}, cells: cells, errs: errs}
	if b.delim != 0 && len(cells) != b.cm.width {
		// A field too many (an unquoted "1,234.56") or too few shifts the
		// values under the wrong headers: the row cannot be read with
		// certainty.
		texts := make([]string, len(cells))
		for i, c := range cells {
			texts[i] = c.s
		}
		r.errs = append(r.errs, paybatch.RowError{Source: r.src, Value: strings.Join(texts, string(b.delim)),
			Err: fmt.Errorf("%w: %s", paybatch.ErrBadField, FieldCountReason(len(cells), b.cm.width, b.delim, true))})
		return paybatch.Instruction{}, "", r.errs
	}
	in := paybatch.Instruction{Kind: b.opts.Kind, Provider: b.opts.Kind.Provider(), Source: r.src}

	id := r.requireText(fMerchantTxID)
	if id != "" {
		if n := utf8.RuneCountInString(id); n > maxMerchantTxID {
			r.fail(fMerchantTxID, id, fmt.Errorf("%w: merchant_transaction_id is %d characters; the limit is %d", paybatch.ErrBadField, n, maxMerchantTxID))
			id = ""
		} else if hasControl(id) {
			r.fail(fMerchantTxID, id, fmt.Errorf("%w: merchant_transaction_id contains a control character", paybatch.ErrBadField))
			id = ""
		}
	}
	in.MerchantTxID = id

	switch b.opts.Kind {
	case paybatch.KindRefund, paybatch.KindCapture, paybatch.KindVoid:
		in.Terminal = r.requireText(fTerminal)
		in.TransactionRef = r.requireText(fTransactionRef)
		in.OrderRef = r.requireText(fOrderRef)
		if b.opts.Kind != paybatch.KindVoid {
			in.Amount = r.money(paybatch.Currency{})
		}
	case paybatch.KindDDPayment:
		in.Mandate = r.optText(fMandate)
		in.Auddis = r.optText(fAuddis)
		if in.Mandate == "" && in.Auddis == "" {
			r.fail(r.firstPresent(fMandate, fAuddis), "", fmt.Errorf("%w: give the mandate id or the AUDDIS reference", paybatch.ErrMissingField))
		}
		in.Amount = r.money(gbp)
		in.CollectionDate = r.date(fCollectionDate)
		in.Description = r.optText(fDescription)
		in.DefaultNarrative = r.optText(fDefaultNarrative)
	case paybatch.KindDDCredit:
		in.Auddis = r.optText(fAuddis)
		in.BankAccount = r.optText(fBankAccount)
		if in.Auddis == "" && in.BankAccount == "" {
			r.fail(r.firstPresent(fAuddis, fBankAccount), "", fmt.Errorf("%w: give the AUDDIS reference or the customer bank account id", paybatch.ErrMissingField))
		}
		in.Amount = r.money(gbp)
		in.CollectionDate = r.date(fCollectionDate)
		in.Description = r.requireText(fDescription)
		in.DefaultNarrative = r.optText(fDefaultNarrative)
	}
	if rules := b.opts.Rules; rules != nil {
		for _, fe := range rules.Validate(in) {
			r.failRule(fe)
		}
	}
	if len(r.errs) > len(errs) {
		return paybatch.Instruction{}, id, r.errs
	}
	return in, id, r.errs
}

// failRule records a provider rule's refusal against the column it names;
// without a value of its own it shows the cell as read.
func (r *rowCtx) failRule(fe paybatch.FieldError) {
	f := fieldNamed(fe.Field)
	v := fe.Value
	if v == "" {
		c, _ := r.cellOf(f)
		v = c.s
	}
	r.fail(f, v, fe.Err)
}

func (r *rowCtx) firstPresent(fs ...field) field {
	for _, f := range fs {
		if r.b.cm.idx[f] >= 0 {
			return f
		}
	}
	return fs[0]
}

func (r *rowCtx) requireText(f field) string {
	s := r.optText(f)
	if s == "" && !r.failedOn(f) {
		r.fail(f, "", fmt.Errorf("%w: %s is required", paybatch.ErrMissingField, f))
	}
	return s
}

// optText returns the field's trimmed text; text that is not UTF-8 (a
// Windows-1252 "£" past the part of the file checked at OpenReader) is refused
// rather than sent mangled.
func (r *rowCtx) optText(f field) string {
	c, ok := r.cellOf(f)
	if !ok {
		return ""
	}
	s := cellText(c)
	if c.num && len(strings.TrimLeft(strings.ReplaceAll(s, ".", ""), "0")) > 15 {
		// Excel keeps 15 significant digits: a longer number typed into a
		// general-format cell has already lost its last digits.
		r.fail(f, s, fmt.Errorf("%w: a number with more than 15 digits cannot be stored exactly by a spreadsheet (this one may already be cut short); format the column as Text and type the id again", paybatch.ErrBadField))
		return ""
	}
	if !utf8.ValidString(s) {
		r.fail(f, strings.ToValidUTF8(s, "\uFFFD"), fmt.Errorf("%w: the text is not UTF-8; save the file as \"CSV UTF-8\"", paybatch.ErrBadField))
		return ""
	}
	return s
}

func (r *rowCtx) failedOn(f field) bool {
	col := r.b.colName(f)
	for _, e := range r.errs {
		if e.Column == col {
			return true
		}
	}
	return false
}

// cellOf returns the cell of field f in this row; false when the cell was
// refused here (a formula, see Options.AcceptFormulaValues) and must not be
// read.
func (r *rowCtx) cellOf(f field) (cell, bool) {
	c, _ := r.b.get(r.cells, f)
	if !c.formula {
		return c, true
	}
	if r.failedOn(f) {
		return cell{}, false
	}
	if c.s == "" {
		r.fail(f, "", fmt.Errorf("%w: the cell holds a formula with no computed value; open the workbook in a spreadsheet program and save it, or paste the column as values", paybatch.ErrBadField))
	} else {
		r.fail(f, c.s, fmt.Errorf("%w: the cell holds a formula whose last computed value is %q (it may be stale); paste the column as values, or pass --accept-formula-values to use the computed values", paybatch.ErrBadField, c.s))
	}
	return cell{}, false
}

// money reads the amount; def is the currency when the currency column is
// absent or blank (GBP for Direct Debit).
func (r *rowCtx) money(def paybatch.Currency) paybatch.Money {
	cur := r.b.cm.impliedC
	ccell, ok := r.cellOf(fCurrency)
	if !ok {
		return paybatch.Money{}
	}
	code := cellText(ccell)
	if code != "" {
		c, err := r.cc.currency(code)
		switch {
		case err != nil:
			r.fail(fCurrency, code, fmt.Errorf("%w; use a 3-letter ISO 4217 code such as GBP, USD, EUR", err))
			return paybatch.Money{}
		case !cur.IsZero() && c != cur:
			r.fail(fCurrency, code, fmt.Errorf("%w: the amount column %q says %s", paybatch.ErrCurrencyMismatch, r.b.cm.header[fAmount], cur))
			return paybatch.Money{}
		}
		cur = c
	}
	if cur.IsZero() {
		cur = def
	}
	if cur.IsZero() {
		r.fail(fCurrency, "", fmt.Errorf("%w: currency is required (ISO 4217 code such as GBP, USD, EUR)", paybatch.ErrMissingField))
		return paybatch.Money{}
	}
	a, ok := r.cellOf(fAmount)
	if !ok {
		return paybatch.Money{}
	}
	var m paybatch.Money
	var err error
	if a.num {
		m, err = parseAmountNumber(a.s, cur)
	} else {
		m, err = parseAmountText(a.s, cur, r.b.opts.DecimalComma)
	}
	if err != nil {
		r.fail(fAmount, a.s, err)
		return paybatch.Money{}
	}
	return m
}

func (r *rowCtx) date(f field) time.Time {
	c, ok := r.cellOf(f)
	if !ok {
		return time.Time{}
	}
	var d time.Time
	var err error
	if c.num {
		d, err = dateFromSerial(c.s, r.b.date1904)
	} else {
		d, err = parseDateText(c.s)
	}
	if err != nil {
		r.fail(f, c.s, err)
		return time.Time{}
	}
	return d
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return strings.IndexFunc(s, unicode.IsControl) >= 0
		}
		if c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}

// curCache is paybatch.ParseCurrency with a one-entry cache: batches are
// mostly one currency.
type curCache struct {
	code string
	cur  paybatch.Currency
}

func (cc *curCache) currency(code string) (paybatch.Currency, error) {
	if code == cc.code && !cc.cur.IsZero() {
		return cc.cur, nil
	}
	// The code may be a borrowed cell (Batch.borrowed), and ParseCurrency
	// keeps an upper-case code as given: parse a copy.
	code = strings.Clone(code)
	c, err := paybatch.ParseCurrency(code)
	if err == nil {
		cc.code, cc.cur = code, c
	}
	return c, err
}
