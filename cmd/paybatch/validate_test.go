package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func runValidate(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), append([]string{"validate"}, args...), env{
		stdout: &out, stderr: &errb,
		now: func() time.Time { return time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC) },
	})
	return out.String(), err
}

func copyFixture(t *testing.T, rel string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "readers", "testdata", rel))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), filepath.Base(rel))
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidateLibreOfficeXLSX(t *testing.T) {
	p := copyFixture(t, "lo/lo_refund.xlsx")
	out, err := runValidate(t, "--kind", "refund", "--json", p)
	if code := exitCode(err); code != exitExceptions {
		t.Fatalf("exit %d (%v), want 1", code, err)
	}
	if !strings.HasPrefix(out, `{"rows":6,"valid":3,"rejected":3,"rejects":[{"file":`) {
		t.Errorf("JSON does not start as specified: %s", out)
	}
	var got struct {
		Rows, Valid, Rejected int
		Rejects               []map[string]any
		Totals                map[string]string
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"USD": "1234.50", "JPY": "1000", "KWD": "12.345"}
	for k, v := range want {
		if got.Totals[k] != v {
			t.Errorf("totals[%s] = %q, want %q (all %v)", k, got.Totals[k], v, got.Totals)
		}
	}
	if len(got.Totals) != len(want) {
		t.Errorf("totals %v", got.Totals)
	}
	for _, r := range got.Rejects {
		for _, k := range []string{"file", "sheet", "row", "column", "value", "reason"} {
			if _, ok := r[k]; !ok {
				t.Errorf("reject %v lacks %q", r, k)
			}
		}
		if r["sheet"] != "Refunds" {
			t.Errorf("reject sheet %v", r["sheet"])
		}
	}
	// rejects.csv beside the input
	f, err := os.Open(filepath.Join(filepath.Dir(p), "rejects.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(recs[0], ",") != "file,sheet,row,column,value,reason" || len(recs) != 4 {
		t.Fatalf("rejects.csv = %q", recs)
	}
	rows := []string{recs[1][2], recs[2][2], recs[3][2]}
	if strings.Join(rows, ",") != "3,8,9" {
		t.Errorf("rejected rows %v, want 3 (duplicate), 8 (over-precise), 9 (duplicate)", rows)
	}
}

func TestValidateSummaryAndExitCodes(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.csv")
	os.WriteFile(good, []byte("Mandate;Merchant Txn ID;Amount;Collection Date\nM1;a;1.234,50;01/12/2026\nM2;b;0,50;2026-12-02\n"), 0o644)
	out, err := runValidate(t, "--kind", "dd-payment", "--decimal-comma", good)
	if err != nil {
		t.Fatalf("err %v\n%s", err, out)
	}
	for _, s := range []string{"rows read: 2", "valid:     2", "rejected:  0", "GBP  2 rows  total 1235.00"} {
		if !strings.Contains(out, s) {
			t.Errorf("summary lacks %q:\n%s", s, out)
		}
	}

	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("Mandate,Merchant Txn ID,Amount,Collection Date\n=HYPERLINK(1),x,1,2026-12-01\nM1,y,-3,2026-12-01\n"), 0o644)
	rejects := filepath.Join(dir, "out", "r.csv")
	os.Mkdir(filepath.Dir(rejects), 0o755)
	_, err = runValidate(t, "--kind", "dd-payment", "--rejects", rejects, bad)
	if code := exitCode(err); code != exitExceptions {
		t.Fatalf("exit %d (%v), want 1", code, err)
	}
	data, _ := os.ReadFile(rejects)
	if !strings.Contains(string(data), ",'=HYPERLINK(1),") || !strings.Contains(string(data), ",'-3,") {
		t.Errorf("formula-like cells not neutralised:\n%s", data)
	}

	for _, args := range [][]string{
		{"--kind", "refund", filepath.Join(dir, "missing.csv")},
		{"--kind", "nope", good},
		{"--kind", "refund", good}, // missing columns
		{good},                     // no --kind
	} {
		_, err := runValidate(t, args...)
		if code := exitCode(err); code != exitUsage {
			t.Errorf("%v: exit %d (%v), want 2", args, code, err)
		}
	}
}

func TestValidateMapping(t *testing.T) {
	dir := t.TempDir()
	m := filepath.Join(dir, "map.yaml")
	os.WriteFile(m, []byte("columns:\n  Cust Ref: merchant_transaction_id\n  Due: credit_date_typo\n"), 0o644)
	f := filepath.Join(dir, "b.csv")
	os.WriteFile(f, []byte("AUDDIS,Cust Ref,Amount,Due,Description\nAUD1,c1,5,2026-12-01,x\n"), 0o644)
	if _, err := runValidate(t, "--kind", "dd-credit", "--mapping", m, f); exitCode(err) != exitUsage {
		t.Fatalf("bad mapping accepted: %v", err)
	}
	os.WriteFile(m, []byte("columns:\n  Cust Ref: merchant_transaction_id\n  Due: collection_date\n"), 0o644)
	out, err := runValidate(t, "--kind", "dd-credit", "--mapping", m, "--json", f)
	if err != nil || !strings.Contains(out, `"totals":{"GBP":"5.00"}`) {
		t.Fatalf("err %v out %s", err, out)
	}
}

// Issue #15: a record with more fields than the header (an unquoted
// "1,234.56") validated with exit 0 and was sent as £1.00. It is refused,
// naming file, line, the field counts and the fix.
func TestValidateRefusesExtraFields(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "d.csv")
	os.WriteFile(p, []byte("mandate,merchant_transaction_id,collection_date,amount\nM01SANDBOX000000001,d-1,2027-01-20,1,234.56\n"), 0o644)
	out, err := runValidate(t, "--kind", "dd-payment", "--json", p)
	if code := exitCode(err); code == 0 {
		t.Fatalf("exit 0, the record was accepted: %s", out)
	}
	var got struct {
		Valid, Rejected int
		Rejects         []map[string]any
		Totals          map[string]string
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got.Valid != 0 || got.Rejected != 1 || len(got.Totals) != 0 {
		t.Fatalf("valid %d rejected %d totals %v, want the one row rejected and no total", got.Valid, got.Rejected, got.Totals)
	}
	reason, _ := got.Rejects[0]["reason"].(string)
	for _, s := range []string{"5 fields where the header has 4", "double quotes", "--decimal-comma", "';'"} {
		if !strings.Contains(reason, s) {
			t.Errorf("reason %q lacks %q", reason, s)
		}
	}
	if got.Rejects[0]["row"] != float64(2) || got.Rejects[0]["file"] != p {
		t.Errorf("reject names %v %v, want %s row 2", got.Rejects[0]["file"], got.Rejects[0]["row"], p)
	}

	// fewer fields than the header: refused too, on every record
	os.WriteFile(p, []byte("mandate,merchant_transaction_id,collection_date,amount\nM01SANDBOX000000001,d-1,2027-01-20\nM01SANDBOX000000001,d-2,2027-01-20,2.00\n"), 0o644)
	out, err = runValidate(t, "--kind", "dd-payment", "--json", p)
	if code := exitCode(err); code != exitExceptions || !strings.Contains(out, "3 fields where the header has 4") {
		t.Fatalf("exit %d: %s", code, out)
	}
}

// Issue #15: rejects.csv is written only when there are rejects (validate
// rewrote the committed testdata/demo/rejects.csv on a clean batch), and its
// path is said on stdout; card numbers are masked in it and in --json; ids
// that differ only in case are a warning.
func TestValidateRejectsFileWarningsAndMasking(t *testing.T) {
	dir := t.TempDir()
	clean := filepath.Join(dir, "clean.csv")
	os.WriteFile(clean, []byte("mandate,merchant_transaction_id,collection_date,amount\nM1,DupCase,2027-01-20,1.00\nM1,dupcase,2027-01-20,2.00\n"), 0o644)
	out, err := runValidate(t, "--kind", "dd-payment", clean)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "rejects.csv")); !os.IsNotExist(err) {
		t.Errorf("rejects.csv written for a clean batch (stat: %v)", err)
	}
	if strings.Contains(out, "rejects") {
		t.Errorf("a clean batch's summary mentions rejects:\n%s", out)
	}
	if !strings.Contains(out, `warning: merchant_transaction_id values that differ only in case: "DupCase" (row 2), "dupcase" (row 3)`) {
		t.Errorf("no case warning:\n%s", out)
	}
	out, err = runValidate(t, "--kind", "dd-payment", "--json", clean)
	if err != nil || !strings.Contains(out, `"warnings":[{"rows":[{"file":`) || strings.Contains(out, "rejects_file") {
		t.Errorf("JSON: %v\n%s", err, out)
	}

	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte(refundHeaderCLI+"4111111111111111,TX8A3F2C,OR7B9E1D,m-1,1.00,USD\n"), 0o644)
	out, err = runValidate(t, "--kind", "refund", bad)
	if code := exitCode(err); code != exitExceptions {
		t.Fatalf("exit %d: %v\n%s", code, err, out)
	}
	rejects := filepath.Join(dir, "rejects.csv")
	if !strings.Contains(out, "rejects written to "+rejects) {
		t.Errorf("stdout does not say where the rejects are:\n%s", out)
	}
	data, err := os.ReadFile(rejects)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "4111111111111111") || strings.Contains(out, "4111111111111111") {
		t.Errorf("card number not masked:\n%s\n%s", data, out)
	}
	out, _ = runValidate(t, "--kind", "refund", "--json", bad)
	if strings.Contains(out, "4111111111111111") || !strings.Contains(out, `"rejects_file":"`+rejects+`"`) {
		t.Errorf("JSON: card number not masked or no rejects_file:\n%s", out)
	}
}

const refundHeaderCLI = "terminal,transaction_reference_id,order_reference_id,merchant_transaction_id,amount,currency\n"
