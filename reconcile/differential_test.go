package reconcile

import (
	"context"
	"database/sql"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/paybatch/paybatch"
)

// The differential test: random ledgers and provider sides with every
// category injected, reconciled by the DuckDB SQL and by the deliberately
// simple reference below (maps and loops). Categories per id and every total
// must be identical.

type refLedger struct {
	id, amount, cur, expected string // text as written in the file
}

type refProvider struct {
	id     string
	amount string // text ("" = no amount)
	cur    string
	class  string // done | not_done | pending | rejected | refused
	status string // text as written (results) or state (journal)
	// journal only
	state, outcome string
	http           int32 // the provider's answer; > 0 on a rejected line: refused
	reject         bool  // a reader reject (rejects table)
}

// reference vocabulary, written out independently of sql/vocab.sql.
var refResultWords = map[string]string{
	"approved": "done", "successful": "done", "succeeded": "done",
	"declined": "not_done", "error": "not_done", "failed": "not_done", "cancelled": "not_done", "canceled": "not_done",
	"processing": "pending", "unknown": "pending", "pending_submission": "pending", "submitted": "pending", "pending": "pending",
}
var refLedgerWords = map[string]string{
	"": "done", "done": "done", "approved": "done", "successful": "done", "succeeded": "done", "completed": "done",
	"paid": "done", "settled": "done",
	"not_done": "not_done", "declined": "not_done", "error": "not_done", "failed": "not_done", "cancelled": "not_done", "canceled": "not_done",
}

// expectsDone: the ledger line expects the operation to have happened.
func expectsDone(l refLedger) bool {
	return refLedgerWords[strings.ToLower(strings.TrimSpace(l.expected))] == "done"
}

type refResult struct {
	cats        map[string]paybatch.Category // per id
	orphans     int64
	counts      map[paybatch.Category]int64
	totals      map[paybatch.Category]paybatch.Totals
	ledgerTot   paybatch.Totals
	providerTot paybatch.Totals
	noAmountTot paybatch.Totals // ledger amounts of ids done without a provider amount
}

func mustMoney(t testing.TB, amount, cur string) paybatch.Money {
	t.Helper()
	c, err := paybatch.ParseCurrency(cur)
	if err != nil {
		t.Fatal(err)
	}
	m, err := paybatch.ParseSignedMoney(amount, c)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func reference(t testing.TB, ledger []refLedger, prov []refProvider, tol decimal.Decimal) refResult {
	res := refResult{cats: map[string]paybatch.Category{}, counts: map[paybatch.Category]int64{},
		totals: map[paybatch.Category]paybatch.Totals{}, ledgerTot: paybatch.Totals{}, providerTot: paybatch.Totals{},
		noAmountTot: paybatch.Totals{}}
	byL := map[string][]refLedger{}
	byP := map[string][]refProvider{}
	ids := map[string]bool{}
	for _, l := range ledger {
		id := strings.TrimSpace(l.id)
		byL[id] = append(byL[id], l)
		ids[id] = true
		if !expectsDone(l) { // expects no money to move: not in the ledger's totals
			continue
		}
		if err := res.ledgerTot.Add(mustMoney(t, l.amount, strings.ToUpper(strings.TrimSpace(l.cur)))); err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range prov {
		if p.state != "" && (p.class == "not_done" || p.class == "rejected" || p.class == "refused") {
			// the journal's view of an operation that did not happen, or
			// that the provider refused or never got: the amount the
			// provider recorded (none here), never the amount asked for
			prov[i].amount, p.amount = "", ""
		}
		if p.class == "done" && p.amount != "" {
			if err := res.providerTot.Add(mustMoney(t, p.amount, strings.ToUpper(p.cur))); err != nil {
				t.Fatal(err)
			}
		}
		id := strings.TrimSpace(p.id)
		if id == "" {
			res.orphans++
			res.counts[paybatch.CatRejectedBeforeSend]++
			continue
		}
		byP[id] = append(byP[id], p)
		ids[id] = true
	}
	add := func(cat paybatch.Category, amount, cur string) {
		if amount == "" {
			return
		}
		if res.totals[cat] == nil {
			res.totals[cat] = paybatch.Totals{}
		}
		if err := res.totals[cat].Add(mustMoney(t, amount, strings.ToUpper(strings.TrimSpace(cur)))); err != nil {
			t.Fatal(err)
		}
	}
	for id := range ids {
		ls := byL[id]
		var exec, rej []refProvider
		refused := false
		for _, p := range byP[id] {
			if p.class == "rejected" || p.class == "refused" {
				rej = append(rej, p)
				refused = refused || p.class == "refused"
			} else {
				exec = append(exec, p)
			}
		}
		var cat paybatch.Category
		switch {
		case len(exec) == 0 && refused:
			cat = paybatch.CatRejectedByProvider
		case len(exec) == 0 && len(rej) > 0:
			cat = paybatch.CatRejectedBeforeSend
		case len(exec) > 1:
			cat = paybatch.CatDuplicateAtProvider
		case len(ls) > 1:
			cat = paybatch.CatDuplicateInLedger
		case len(exec) == 0:
			cat = paybatch.CatMissingAtProvider
		case len(ls) == 0:
			cat = paybatch.CatMissingInLedger
		case exec[0].class == "pending":
			cat = paybatch.CatPending
		default:
			l, p := ls[0], exec[0]
			lcur := strings.ToUpper(strings.TrimSpace(l.cur))
			pcur := strings.ToUpper(strings.TrimSpace(p.cur))
			switch {
			case pcur != "" && pcur != lcur:
				cat = paybatch.CatCurrencyMismatch
			case p.class != refLedgerWords[strings.ToLower(strings.TrimSpace(l.expected))]:
				cat = paybatch.CatStatusMismatch
			case p.class == "done" && p.amount != "":
				lm, pm := mustMoney(t, l.amount, lcur), mustMoney(t, p.amount, pcur)
				diff := decimal.New(lm.Minor-pm.Minor, -int32(lm.Currency.Exponent())).Abs()
				tolMinor := tol.Shift(int32(lm.Currency.Exponent())).Floor()
				if diff.Shift(int32(lm.Currency.Exponent())).GreaterThan(tolMinor) {
					cat = paybatch.CatAmountMismatch
				} else {
					cat = paybatch.CatMatched
				}
			default:
				cat = paybatch.CatMatched
			}
		}
		res.cats[id] = cat
		res.counts[cat]++
		voided := false
		for _, p := range exec {
			voided = voided || p.class == "done" && p.amount == ""
		}
		if voided {
			for _, l := range ls {
				if !expectsDone(l) {
					continue
				}
				if err := res.noAmountTot.Add(mustMoney(t, l.amount, strings.ToUpper(strings.TrimSpace(l.cur)))); err != nil {
					t.Fatal(err)
				}
			}
		}
		switch {
		case len(ls) > 0:
			for _, l := range ls {
				add(cat, l.amount, l.cur)
			}
		case len(exec) > 0:
			for _, p := range exec {
				add(cat, p.amount, p.cur)
			}
		default:
			for _, p := range rej {
				add(cat, p.amount, p.cur)
			}
		}
	}
	return res
}

// generator

var genCurrencies = []string{"USD", "EUR", "GBP", "JPY", "KWD"}

func genAmount(rng *rand.Rand, cur string, minor int64) string {
	exp := paybatch.MustCurrency(cur).Exponent()
	s := decimal.New(minor, -int32(exp)).StringFixed(int32(exp))
	if rng.IntN(4) == 0 && strings.Contains(s, ".") { // "10.50" written as "10.5"
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

func otherCurrency(rng *rand.Rand, cur string) string {
	for {
		if c := pick(rng, genCurrencies); c != cur {
			return c
		}
	}
}

var (
	doneWords    = []string{"APPROVED", "successful", "Approved", " succeeded "}
	notDoneWords = []string{"DECLINED", "ERROR", "CANCELLED", "failed", "cancelled"}
	pendingWords = []string{"PROCESSING", "UNKNOWN", "pending_submission", "submitted"}
)

// generate makes n ids with a random scenario each. journal selects the
// provider side: journal rows (with rejected/conflict rows and reader
// rejects) or a results file (which has no rejections). single leaves out
// the scenarios that give an id several lines of one side (duplicates, and
// a journal id both rejected and executed), so
// that Run sums everything in its single pass (sql/summary.sql) instead of
// taking the exact path.
func generate(rng *rand.Rand, n int, journal, single bool) ([]refLedger, []refProvider) {
	var ledger []refLedger
	var prov []refProvider
	provLine := func(id string, cur string, minor int64, class string) refProvider {
		p := refProvider{id: id, cur: cur, amount: genAmount(rng, cur, minor), class: class}
		if journal {
			switch class {
			case "done":
				p.state, p.outcome, p.status = "final", "succeeded", "APPROVED"
			case "not_done":
				p.state, p.outcome = pick(rng, [][2]string{{"final", "failed"}, {"final", "cancelled"}, {"declined", ""}})[0], ""
				if p.state == "final" {
					p.outcome = pick(rng, []string{"failed", "cancelled"})
				}
			case "pending":
				p.state = pick(rng, []string{"pending", "sending", "accepted", "failed", "final"})
				if p.state == "final" {
					p.outcome = "pending"
				}
			case "rejected":
				p.state = pick(rng, []string{"rejected", "conflict"})
				if !single && rng.IntN(2) == 0 { // sent, and refused by the provider (exact path)
					p.http, p.class = pick(rng, []int32{400, 404, 409, 422}), "refused"
				}
			}
			if rng.IntN(10) == 0 {
				p.cur = strings.ToLower(cur)
			}
		} else {
			switch class {
			case "done":
				p.status = pick(rng, doneWords)
			case "not_done":
				p.status = pick(rng, notDoneWords)
			case "pending":
				p.status = pick(rng, pendingWords)
			}
		}
		return p
	}
	ledgerLine := func(id, cur string, minor int64, expected string) refLedger {
		c := cur
		if rng.IntN(8) == 0 {
			c = strings.ToLower(cur)
		}
		return refLedger{id: id, cur: c, amount: genAmount(rng, cur, minor), expected: expected}
	}
	for i := range n {
		id := fmt.Sprintf("MT%06d", i)
		cur := pick(rng, genCurrencies)
		minor := rng.Int64N(10_000_000) + 1
		if rng.IntN(20) == 0 {
			minor = -minor // ledgers carry negative lines
		}
		scen := rng.IntN(14)
		if !journal && scen == 12 {
			scen = 0
		}
		// single: no id with two lines on one side; a journal id both
		// rejected and executed (13) has two provider lines
		if single && (scen >= 9 && scen <= 11 || journal && scen == 13) {
			scen = 0
		}
		switch scen {
		case 0, 1, 2: // matched (ledger may say nothing or a done word)
			ledger = append(ledger, ledgerLine(id, cur, minor, pick(rng, []string{"", "", "done", "Paid"})))
			prov = append(prov, provLine(id, cur, minor, "done"))
		case 3: // amount off by a little or a lot
			ledger = append(ledger, ledgerLine(id, cur, minor, ""))
			prov = append(prov, provLine(id, cur, minor+pick(rng, []int64{1, -1, 5, 10, 11, 1000}), "done"))
		case 4: // currency
			ledger = append(ledger, ledgerLine(id, cur, minor, ""))
			prov = append(prov, provLine(id, otherCurrency(rng, cur), minor, pick(rng, []string{"done", "not_done"})))
		case 5: // status both ways, or agreed not done
			switch rng.IntN(3) {
			case 0:
				ledger = append(ledger, ledgerLine(id, cur, minor, ""))
				prov = append(prov, provLine(id, cur, minor, "not_done"))
			case 1:
				ledger = append(ledger, ledgerLine(id, cur, minor, pick(rng, []string{"cancelled", "Declined"})))
				prov = append(prov, provLine(id, cur, minor, "done"))
			default:
				ledger = append(ledger, ledgerLine(id, cur, minor, "failed"))
				prov = append(prov, provLine(id, cur, minor+7, "not_done"))
			}
		case 6:
			ledger = append(ledger, ledgerLine(id, cur, minor, ""))
			prov = append(prov, provLine(id, cur, minor, "pending"))
		case 7:
			ledger = append(ledger, ledgerLine(id, cur, minor, ""))
		case 8:
			if minor < 0 {
				minor = -minor
			}
			prov = append(prov, provLine(id, cur, minor, pick(rng, []string{"done", "not_done", "pending"})))
		case 9: // duplicate in ledger, maybe mixed currencies
			for range 2 + rng.IntN(2) {
				c := cur
				if rng.IntN(3) == 0 {
					c = otherCurrency(rng, cur)
				}
				ledger = append(ledger, ledgerLine(id, c, rng.Int64N(100000)+1, ""))
			}
			if rng.IntN(2) == 0 {
				prov = append(prov, provLine(id, cur, minor, pick(rng, []string{"done", "pending"})))
			}
		case 10, 11: // executed twice
			for range 2 + rng.IntN(2) {
				prov = append(prov, provLine(id, cur, minor, pick(rng, []string{"done", "done", "not_done", "pending"})))
			}
			for range rng.IntN(3) {
				ledger = append(ledger, ledgerLine(id, cur, minor, ""))
			}
			if journal && rng.IntN(2) == 0 {
				prov = append(prov, provLine(id, cur, minor, "rejected"))
			}
		case 12: // journal: refused before sending, maybe with a ledger line
			if rng.IntN(2) == 0 {
				ledger = append(ledger, ledgerLine(id, cur, minor, ""))
			}
			if minor < 0 {
				minor = -minor
			}
			switch rng.IntN(3) {
			case 0:
				prov = append(prov, provLine(id, cur, minor, "rejected"))
			case 1:
				prov = append(prov, refProvider{id: id, class: "rejected", reject: true})
			default: // an id-less reader reject plus a conflict
				prov = append(prov, refProvider{class: "rejected", reject: true})
				prov = append(prov, provLine(id, cur, minor, "rejected"))
			}
		case 13: // executed once plus a rejected line: the executed line decides
			ledger = append(ledger, ledgerLine(id, cur, minor, ""))
			if journal {
				prov = append(prov, provLine(id, cur, minor, "rejected"))
			}
			prov = append(prov, provLine(id, cur, minor, "done"))
		}
		if journal && scen != 12 && rng.IntN(40) == 0 { // a void: no amount, no currency
			for i := range prov {
				if prov[i].id == id && prov[i].class == "done" {
					prov[i].amount, prov[i].cur = "", ""
				}
			}
		}
	}
	rng.Shuffle(len(ledger), func(i, j int) { ledger[i], ledger[j] = ledger[j], ledger[i] })
	rng.Shuffle(len(prov), func(i, j int) { prov[i], prov[j] = prov[j], prov[i] })
	return ledger, prov
}

func writeCSV(t testing.TB, path string, header []string, rows [][]string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	w.Write(header)
	w.WriteAll(rows)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// genLedgerHeader and genResultsHeader name the columns of generated
// files (writeGenerated) otherwise than paybatch's own: the header is
// mapped.
var (
	genLedgerHeader  = []string{"Reference", "Amount", "Ccy", "Expected Status"}
	genResultsHeader = []string{"Status", "merchant_transaction_id", "amount", "currency", "transaction_id", "reason"}
)

// writeGenerated writes n ids of generate (a results file, one line an id
// on each side: every category of the usual case, ids out of order) as
// dir's gen_ledger.csv and gen_results.csv. The i-th results line has the
// transaction id " TX<i> " (spaces to trim) and the reason reason(i) (""
// when reason is nil). It returns the two paths and the results' records.
func writeGenerated(t testing.TB, dir string, rng *rand.Rand, n int, reason func(i int) string) (ledger, results string, prows [][]string) {
	t.Helper()
	lines, prov := generate(rng, n, false, true)
	var lrows [][]string
	for _, l := range lines {
		lrows = append(lrows, []string{l.id, l.amount, l.cur, l.expected})
	}
	for i, p := range prov {
		r := ""
		if reason != nil {
			r = reason(i)
		}
		prows = append(prows, []string{p.status, p.id, p.amount, p.cur, fmt.Sprintf(" TX%d ", i), r})
	}
	ledger, results = filepath.Join(dir, "gen_ledger.csv"), filepath.Join(dir, "gen_results.csv")
	writeCSV(t, ledger, genLedgerHeader, lrows)
	writeCSV(t, results, genResultsHeader, prows)
	return ledger, results, prows
}

func TestDifferential(t *testing.T) {
	// single: no duplicates, so Run takes its single pass (summary.sql);
	// otherwise the exact path (categorize.sql). Rows always read recon, so
	// the per-id categories below check categorize.sql, and in single cases
	// the totals check summary.sql.
	cases := []struct {
		seed    uint64
		n       int
		journal bool
		tol     string
		single  bool
		parquet bool // the ledger as a Parquet file (text columns)
	}{
		{1, 3000, false, "", false, false},
		{2, 3000, true, "", false, false},
		{3, 2500, false, "0.05", false, false},
		{4, 2500, true, "0.1", false, false},
		{5, 2000, true, "0.005", false, false},
		{6, 3000, false, "", true, false},
		{7, 3000, true, "", true, false},
		{8, 2500, false, "0.05", true, true},
		{9, 2500, true, "0.1", true, true},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("seed%d_journal=%v_tol=%s_single=%v", tc.seed, tc.journal, tc.tol, tc.single), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(tc.seed, 42))
			ledger, prov := generate(rng, tc.n, tc.journal, tc.single)
			dir := t.TempDir()
			var lrows [][]string
			for _, l := range ledger {
				lrows = append(lrows, []string{l.id, l.amount, l.cur, l.expected})
			}
			lpath := filepath.Join(dir, "ledger.csv")
			writeCSV(t, lpath, []string{"Reference", "Amount", "Ccy", "Expected Status"}, lrows)
			if tc.parquet {
				lpath = csvToParquet(t, lpath)
			}

			r := MustOpen(t, tc.tol)
			ctx := context.Background()
			if err := r.LoadLedger(ctx, lpath, ""); err != nil {
				t.Fatal(err)
			}
			if tc.journal {
				var js []journalRow
				var rj []rejectRow
				for i, p := range prov {
					if p.reject {
						rj = append(rj, rejectRow{SourceFile: "batch.csv", SourceRow: i + 2, Column: "Amount", Value: "x", Reason: "bad amount", MTID: p.id})
						continue
					}
					jr := journalRow{Key: fmt.Sprintf("k%06d", i), Provider: "smartretry", Kind: "refund", MTID: p.id,
						Currency: p.cur, State: p.state, Outcome: p.outcome, SourceFile: "batch.csv", SourceRow: i + 2, HTTP: p.http}
					if p.amount != "" {
						m := mustMoney(t, p.amount, strings.ToUpper(p.cur))
						jr.Amount = i64(m.Minor)
					}
					js = append(js, jr)
				}
				jpath := filepath.Join(dir, "journal.duckdb")
				writeJournal(t, jpath, js, rj)
				if err := r.LoadJournal(ctx, jpath); err != nil {
					t.Fatal(err)
				}
			} else {
				var prows [][]string
				for _, p := range prov {
					prows = append(prows, []string{p.status, p.id, p.amount, p.cur})
				}
				ppath := filepath.Join(dir, "results.csv")
				writeCSV(t, ppath, []string{"Status", "merchant_transaction_id", "amount", "currency"}, prows)
				if err := r.LoadResults(ctx, ppath, ""); err != nil {
					t.Fatal(err)
				}
			}
			got, err := r.Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if r.built == tc.single {
				t.Errorf("Run took the %s path", map[bool]string{true: "exact", false: "single-pass"}[r.built])
			}
			if l, p := r.Lines(); l != int64(len(ledger)) || p != int64(len(prov)) {
				t.Errorf("Lines() = %d ledger, %d provider; want %d, %d", l, p, len(ledger), len(prov))
			}
			want := reference(t, ledger, prov, decimalOrZero(tc.tol))

			// categories per id, from the streamed rows
			gotCats := map[string]paybatch.Category{}
			var orphans int64
			for _, row := range collectRows(t, r) {
				if row.MerchantTxID == "" {
					orphans++
					continue
				}
				if prev, ok := gotCats[row.MerchantTxID]; ok && prev != row.Category {
					t.Fatalf("id %s in two categories: %s and %s", row.MerchantTxID, prev, row.Category)
				}
				gotCats[row.MerchantTxID] = row.Category
			}
			if len(gotCats) != len(want.cats) || orphans != want.orphans {
				t.Errorf("ids: got %d (+%d id-less), want %d (+%d)", len(gotCats), orphans, len(want.cats), want.orphans)
			}
			bad := 0
			for id, w := range want.cats {
				if g := gotCats[id]; g != w && bad < 10 {
					bad++
					t.Errorf("id %s: got %q, want %q", id, g, w)
				}
			}
			seen := map[paybatch.Category]bool{}
			for _, c := range paybatch.Categories {
				g := got.Categories[c]
				if g.Count != want.counts[c] {
					t.Errorf("%s: count %d, want %d", c, g.Count, want.counts[c])
				}
				if !totalsEqual(g.Totals, want.totals[c]) {
					t.Errorf("%s: totals %v, want %v", c, g.Totals.Strings(), want.totals[c].Strings())
				}
				seen[c] = g.Count > 0
			}
			if !totalsEqual(got.LedgerTotals, want.ledgerTot) {
				t.Errorf("ledger totals %v, want %v", got.LedgerTotals.Strings(), want.ledgerTot.Strings())
			}
			if !totalsEqual(got.ProviderTotals, want.providerTot) {
				t.Errorf("provider totals %v, want %v", got.ProviderTotals.Strings(), want.providerTot.Strings())
			}
			if !totalsEqual(got.NoProviderAmount, want.noAmountTot) {
				t.Errorf("no-provider-amount totals %v, want %v", got.NoProviderAmount.Strings(), want.noAmountTot.Strings())
			}
			// every category must have been exercised (results files cannot carry rejections)
			for _, c := range paybatch.Categories {
				dup := c == paybatch.CatDuplicateAtProvider || c == paybatch.CatDuplicateInLedger
				rej := c == paybatch.CatRejectedBeforeSend || c == paybatch.CatRejectedByProvider
				if !seen[c] && (tc.journal || !rej) && !(tc.single && (dup || c == paybatch.CatRejectedByProvider)) {
					t.Errorf("generator never produced %s", c)
				}
			}
		})
	}
}

// csvToParquet copies a CSV, every column as text, into a Parquet file.
func csvToParquet(t testing.TB, path string) string {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := strings.TrimSuffix(path, ".csv") + ".parquet"
	if _, err := db.Exec(`COPY (SELECT * FROM read_csv(?, all_varchar = true)) TO '`+strings.ReplaceAll(out, "'", "''")+`' (FORMAT parquet)`, path); err != nil {
		t.Fatal(err)
	}
	return out
}

func decimalOrZero(s string) decimal.Decimal {
	if s == "" {
		return decimal.Zero
	}
	return decimal.RequireFromString(s)
}

func totalsEqual(a, b paybatch.Totals) bool {
	nonzero := func(t paybatch.Totals) map[string]string {
		out := map[string]string{}
		for k, v := range t {
			out[k] = v.String()
		}
		return out
	}
	x, y := nonzero(a), nonzero(b)
	if len(x) != len(y) {
		return false
	}
	for k, v := range x {
		if y[k] != v {
			return false
		}
	}
	return true
}
