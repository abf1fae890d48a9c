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

// Limits from the provider contracts (../shared/api/*.md).
const (
	maxMerchantTxID = 100 // SmartRetry merchant_transaction_id ≤ 100 chars
	maxNarrative    = 18  // SmarterPay default_narrative ≤ 18
	maxDescription  = 100 // SmarterPay credit description ≤ 100 (applied to payments too)
	maxAuddis       = 18  // AUDDIS reference ≤ 18, A-Z 0-9 / - . & space
	maxAccountID    = 50  // mandate / bank account ids: "prefix + auto number"; no documented length
)

// gbp is the only currency SmarterPay (UK Bacs) moves.
var gbp = paybatch.MustCurrency("GBP")

// rowCtx collects the problems of one row.
type rowCtx struct {
	b     *Batch
	src   paybatch.Source
	cells []cell
	errs  []paybatch.RowError
}

func (r *rowCtx) fail(f field, value string, err error) {
	r.errs = append(r.errs, paybatch.RowError{Source: r.src, Column: r.b.colName(f), Value: value, Err: err})
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
	r := rowCtx{b: b, src: paybatch.Source{File: b.path, Sheet: b.sheet, Row: row}, cells: cells, errs: errs}
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
		if in.Terminal != "" && !(len(in.Terminal) == 6 && isAlnum(in.Terminal)) {
			r.fail(fTerminal, in.Terminal, fmt.Errorf("%w: a terminal id is exactly 6 letters or digits (e.g. ABC123)", paybatch.ErrBadField))
		}
		in.TransactionRef = r.ref8(fTransactionRef)
		in.OrderRef = r.ref8(fOrderRef)
		if b.opts.Kind != paybatch.KindVoid {
			in.Amount = r.money(paybatch.Currency{})
		}
	case paybatch.KindDDPayment:
		in.Mandate = r.optText(fMandate)
		in.Auddis = r.optText(fAuddis)
		if in.Mandate == "" && in.Auddis == "" {
			r.fail(r.firstPresent(fMandate, fAuddis), "", fmt.Errorf("%w: give the mandate id or the AUDDIS reference", paybatch.ErrMissingField))
		}
		r.checkAccountID(fMandate, in.Mandate)
		r.checkAuddis(in.Auddis)
		in.Amount = r.money(gbp)
		in.CollectionDate = r.date(fCollectionDate)
		in.Description = r.optText(fDescription)
		r.maxLen(fDescription, in.Description, maxDescription)
		in.DefaultNarrative = r.optText(fDefaultNarrative)
		r.maxLen(fDefaultNarrative, in.DefaultNarrative, maxNarrative)
	case paybatch.KindDDCredit:
		in.Auddis = r.optText(fAuddis)
		in.BankAccount = r.optText(fBankAccount)
		if in.Auddis == "" && in.BankAccount == "" {
			r.fail(r.firstPresent(fAuddis, fBankAccount), "", fmt.Errorf("%w: give the AUDDIS reference or the customer bank account id", paybatch.ErrMissingField))
		}
		r.checkAuddis(in.Auddis)
		r.checkAccountID(fBankAccount, in.BankAccount)
		in.Amount = r.money(gbp)
		in.CollectionDate = r.date(fCollectionDate)
		in.Description = r.requireText(fDescription)
		r.maxLen(fDescription, in.Description, maxDescription)
		in.DefaultNarrative = r.optText(fDefaultNarrative)
		r.maxLen(fDefaultNarrative, in.DefaultNarrative, maxNarrative)
	}
	if len(r.errs) > len(errs) {
		return paybatch.Instruction{}, id, r.errs
	}
	return in, id, r.errs
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
// Windows-1252 "£" past the part of the file checked at Open) is refused
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

func (r *rowCtx) maxLen(f field, s string, n int) {
	if l := utf8.RuneCountInString(s); l > n {
		r.fail(f, s, fmt.Errorf("%w: %s is %d characters; the limit is %d", paybatch.ErrBadField, f, l, n))
	}
}

func (r *rowCtx) ref8(f field) string {
	s := r.requireText(f)
	if s != "" && !(len(s) == 8 && isAlnum(s)) {
		r.fail(f, s, fmt.Errorf("%w: a SmartRetry %s is exactly 8 letters or digits (e.g. TX8A3F2C); copy it from the original transaction", paybatch.ErrBadField, f))
	}
	return s
}

func (r *rowCtx) checkAuddis(s string) {
	if s == "" {
		return
	}
	if len(s) > maxAuddis {
		r.fail(fAuddis, s, fmt.Errorf("%w: an AUDDIS reference is at most %d characters", paybatch.ErrBadField, maxAuddis))
		return
	}
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("/-.& ", c)) {
			r.fail(fAuddis, s, fmt.Errorf("%w: an AUDDIS reference uses only A-Z, 0-9, space and / - . &", paybatch.ErrBadField))
			return
		}
	}
}

func (r *rowCtx) checkAccountID(f field, s string) {
	if s == "" {
		return
	}
	if len(s) > maxAccountID || strings.IndexFunc(s, func(c rune) bool {
		return !(c < utf8.RuneSelf && (c == '-' || c == '_' || unicode.IsLetter(c) || unicode.IsDigit(c)))
	}) >= 0 {
		r.fail(f, s, fmt.Errorf("%w: a SmarterPay %s id is letters, digits, '-' or '_' (e.g. M01741EJ519Y51P3XGL), at most %d characters", paybatch.ErrBadField, f, maxAccountID))
	}
}

// money reads the amount; fixed (GBP for SmarterPay) is the only currency
// allowed when set, and the default when the currency column is absent or
// blank.
func (r *rowCtx) money(fixed paybatch.Currency) paybatch.Money {
	cur := r.b.cm.impliedC
	ccell, ok := r.cellOf(fCurrency)
	if !ok {
		return paybatch.Money{}
	}
	code := cellText(ccell)
	if code != "" {
		c, err := r.b.currency(code)
		switch {
		case err != nil:
			r.fail(fCurrency, code, fmt.Errorf("%w; use a 3-letter ISO 4217 code such as GBP, USD, EUR", err))
			return paybatch.Money{}
		case !fixed.IsZero() && c != fixed:
			r.fail(fCurrency, code, fmt.Errorf("%w: SmarterPay collects and pays in %s only", paybatch.ErrBadCurrency, fixed))
			return paybatch.Money{}
		case !cur.IsZero() && c != cur:
			r.fail(fCurrency, code, fmt.Errorf("%w: the amount column %q says %s", paybatch.ErrCurrencyMismatch, r.b.cm.header[fAmount], cur))
			return paybatch.Money{}
		}
		cur = c
	}
	if cur.IsZero() {
		cur = fixed
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
	if err == nil {
		err = checkMax(m, r.b.opts.Kind.Provider())
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
	if err == nil && d.Before(r.b.today) {
		err = fmt.Errorf("%w: %s is in the past (today is %s); Bacs refuses past dates", paybatch.ErrBadDate, d.Format(time.DateOnly), r.b.today.Format(time.DateOnly))
	}
	if err != nil {
		r.fail(f, c.s, err)
		return time.Time{}
	}
	return d
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
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

// currency is paybatch.ParseCurrency with a one-entry cache: batches are
// mostly one currency.
func (b *Batch) currency(code string) (paybatch.Currency, error) {
	if code == b.lastCode && !b.lastCur.IsZero() {
		return b.lastCur, nil
	}
	c, err := paybatch.ParseCurrency(code)
	if err == nil {
		b.lastCode, b.lastCur = strings.Clone(code), c
	}
	return c, err
}
